#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the benchmark's samples into tables: usage: bench-report.py OUT

Reads OUT/samples.txt (bench-vm.sh, mdev_bench), OUT/static.txt (module
sizes) and OUT/vm-info.txt; writes OUT/results.txt, OUT/results.md and
OUT/results.rst. For each metric: min/median/max over all samples of all
rounds, per implementation, and the ratio of the Rust median to the C one.
"""
import datetime
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# (metric, what it is, better: "lower"/"higher"), in table order.


def bar0_and_common(bar0_size):
    """The rows both drivers have: BAR0, its mapping, lifecycle, module."""
    return [
        ("bar0_read_4K", "BAR0 read(), 4 KiB chunks", "higher"),
        ("bar0_write_4K", "BAR0 write(), 4 KiB chunks", "higher"),
        ("bar0_read_1M", "BAR0 read(), 1 MiB chunks", "higher"),
        ("bar0_write_1M", "BAR0 write(), 1 MiB chunks", "higher"),
        ("bar0_mmap_fault_in", f"mmap + first touch of all of BAR0 ({bar0_size})", "lower"),
        ("bar0_mmap_frame_read", "read of a frame (3 MiB) from the BAR0 mapping", "higher"),
        ("memcpy_frame_reference", "reference: memcpy of 3 MiB of plain memory", "higher"),
        ("=bar0_mmap_frame_read/memcpy_frame_reference", "BAR0 mapping read / memcpy", "higher"),
        ("bar0_mmap_frame_write", "write of a frame (3 MiB) into the BAR0 mapping", "higher"),
        ("=bar0_mmap_frame_write/memcpy_frame_reference", "BAR0 mapping write / memcpy", "higher"),
        ("lifecycle_total", "mdev create + open + close + remove", "lower"),
        ("lifecycle_create", "  of which create", "lower"),
        ("lifecycle_open", "  of which open (iommufd cdev)", "lower"),
        ("lifecycle_close", "  of which close", "lower"),
        ("lifecycle_remove", "  of which remove", "lower"),
        ("module_load", "module load (finit_module, stripped .ko)", "lower"),
        ("module_unload", "module unload (delete_module)", "lower"),
        ("module_load_unstripped", "module load, .ko with debug info", "lower"),
        ("ko_size", ".ko size, as built", "lower"),
        ("ko_size_stripped", ".ko size, strip --strip-debug", "lower"),
        ("ko_text", "text of the stripped .ko", "lower"),
        ("ko_data_bss", "data + bss of the stripped .ko", "lower"),
    ]


def migration(type_, memory):
    """Stop-copy of a whole device (the Rust modules only: C has no migration)."""
    return [
        ("mig_stop_copy_bytes", f"migration: stop-copy stream of {type_}, all of {memory} written", "lower"),
        ("mig_data_size_estimate", "  MIG_DATA_SIZE estimate of it, before the save", "lower"),
        ("mig_save", "  save: STOP_COPY, read to EOF, STOP", "higher"),
        ("mig_restore", "  restore: RESUMING, write, STOP", "higher"),
        ("mig_memcpy_reference", "  reference: memcpy of the stream's bytes", "higher"),
        ("=mig_save/mig_memcpy_reference", "  save / memcpy", "higher"),
        ("=mig_restore/mig_memcpy_reference", "  restore / memcpy", "higher"),
        ("=mig_save/bar0_read_1M", "  save / BAR0 read() (the kernel's own copy, same VM)", "higher"),
        ("=mig_restore/bar0_write_1M", "  restore / BAR0 write() (the same)", "higher"),
        ("mig_restore_memory_peak",
         "  destination's extra memory at its peak (all written, before STOP; free pages, per-CPU lists included)", "lower"),
        ("=mig_restore_memory_peak/mig_memory_size", "  of it / the device memory (one copy: 1)", "lower"),
        ("mig_restore_memory_after", "  destination's extra memory 0.5 s after STOP (the old memory freed)", "lower"),
        ("mig_qemu_downtime", f"  QEMU: downtime of a paused VM's migration on {type_}", "lower"),
        ("mig_qemu_device_bytes", "  QEMU: device state bytes it moved", "lower"),
        ("mig_precopy_memory", f"pre-copy (no QEMU): the memory of {type_}, all written", "lower"),
        ("mig_precopy_static_stop_copy_bytes", "  static screen: stop-copy bytes", "lower"),
        ("mig_precopy_static_downtime", "  static screen: downtime (pause to destination STOP)", "lower"),
        ("mig_precopy_static_downtime_source", "    of it: source (P2P, STOP_COPY, read to EOF)", "lower"),
        ("mig_precopy_static_downtime_write", "    of it: destination's write()", "lower"),
        ("mig_precopy_static_downtime_commit", "    of it: destination's RESUMING -> STOP", "lower"),
        ("mig_precopy_small_stop_copy_bytes", "  64x64 square redrawn: stop-copy bytes", "lower"),
        ("mig_precopy_small_downtime", "  64x64 square redrawn: downtime", "lower"),
        ("mig_precopy_full_stop_copy_bytes", "  1920x1080 screen redrawn: stop-copy bytes", "lower"),
        ("mig_precopy_full_downtime", "  1920x1080 screen redrawn: downtime", "lower"),
    ]


METRICS = {
    "mdpy": [
        ("query_plane", "QUERY_GFX_PLANE (region), per call", "lower"),
        ("config_read", "config space read(), 4 bytes", "lower"),
    ] + bar0_and_common("4 MiB") + migration("mdpy-hd", "its framebuffer (8 MiB)") + [
        ("mig_vga_precopy_memory", "pre-copy (no QEMU): the memory of mdpy-vga, all written", "lower"),
        ("mig_vga_precopy_static_stop_copy_bytes", "  static screen: stop-copy bytes", "lower"),
        ("mig_vga_precopy_static_downtime", "  static screen: downtime (pause to destination STOP)", "lower"),
        ("mig_vga_precopy_static_downtime_source", "    of it: source (P2P, STOP_COPY, read to EOF)", "lower"),
        ("mig_vga_precopy_static_downtime_write", "    of it: destination's write()", "lower"),
        ("mig_vga_precopy_static_downtime_commit", "    of it: destination's RESUMING -> STOP", "lower"),
    ],
    "mbochs": [
        ("query_plane", "QUERY_GFX_PLANE (dma-buf), mode unchanged: per frame", "lower"),
        ("config_read", "config space read(), 4 bytes", "lower"),
        ("bar2_dispi_read", "DISPI register read() (BAR2, 2 bytes)", "lower"),
        ("bar2_dispi_write", "DISPI register write() (BAR2, 2 bytes)", "lower"),
        ("mode_change_known", "mode change to a known mode (10 DISPI writes + QUERY)", "lower"),
        ("mode_change_new", "mode change to a new mode (DISPI writes + QUERY creating the buffer)", "lower"),
        ("dmabuf_first_get_close", "first GET_GFX_DMABUF of a buffer (export) + close", "lower"),
        ("dmabuf_get_again_close", "GET_GFX_DMABUF of an exported buffer + close", "lower"),
        ("dmabuf_get_mmap_read_close", "GET_GFX_DMABUF + mmap + read frame (3 MiB) + close", "lower"),
        ("dmabuf_mmap_fault_in", "dma-buf mmap + first touch of the frame", "lower"),
        ("dmabuf_mmap_frame_read", "read of the frame from the dma-buf mapping", "higher"),
        ("=dmabuf_mmap_frame_read/memcpy_frame_reference", "dma-buf mapping read / memcpy", "higher"),
    ] + bar0_and_common("16 MiB") + migration("mbochs-large", "its 64 MiB of VRAM") + [
        ("=mig_precopy_static_downtime/mdpy:mig_vga_precopy_static_downtime",
         "  static screen: downtime / mdpy-vga's (same VM and round order)", "lower"),
    ],
}

# Notes attached to cells (driver, metric, impl).
NOTES = {
    ("mdpy", "bar0_read_4K", "c"): "C defect 1: every access hits byte 0",
    ("mdpy", "bar0_write_4K", "c"): "C defect 1",
    ("mdpy", "bar0_read_1M", "c"): "C defect 1",
    ("mdpy", "bar0_write_1M", "c"): "C defect 1",
    ("mbochs", "mode_change_new", "c"): "C: 2 QUERYs (defect 3: first is ENOMEM)",
    ("mbochs", "bar0_read_4K", "c"): "C defect 2: data shifted by 2 pages",
}


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}"


def main():
    out = Path(sys.argv[1])
    samples = defaultdict(list)   # (drv, metric, impl) -> [values]
    units = {}
    na = {}
    errors = []
    for line in (out / "samples.txt").read_text().splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "sample" and len(f) == 7:
            _, drv, metric, impl, _round, value, unit = f
            samples[(drv, metric, impl)].append(float(value))
            units[(drv, metric)] = unit
        elif f[0] == "na" and len(f) >= 5:
            na[(f[1], f[2], f[3])] = " ".join(f[4:]).replace("_", " ")
        elif f[0] == "error":
            errors.append(" ".join(f[1:]))
    static = out / "static.txt"
    if static.exists():
        for line in static.read_text().splitlines():
            _, drv, metric, impl, value, unit = line.split()
            samples[(drv, metric, impl)].append(float(value))
            units[(drv, metric)] = unit
    if not samples:
        print("no samples", file=sys.stderr)
        return 1

    rounds = sorted({int(l.split()[4]) for l in (out / "samples.txt").read_text().splitlines()
                     if l.startswith("sample ")})
    info = (out / "vm-info.txt").read_text().splitlines() if (out / "vm-info.txt").exists() else []
    splats = 0
    if (out / "dmesg.txt").exists():
        splats = len(re.findall(r"cut here|BUG:|Oops|possible recursive|circular locking",
                                (out / "dmesg.txt").read_text()))

    def stats(drv, metric, impl):
        v = samples.get((drv, metric, impl))
        if not v:
            return None
        return (min(v), statistics.median(v), max(v), len(v))

    tables = {}
    for drv, metrics in METRICS.items():
        rows = []
        for metric, what, better in metrics:
            if metric.startswith("="):
                num, den = metric[1:].split("/")
                cells, meds = [], {}
                # "driver:metric" names another driver's metric.
                num_drv, num = num.split(":") if ":" in num else (drv, num)
                den_drv, den = den.split(":") if ":" in den else (drv, den)
                for impl in ("c", "rust"):
                    a, b = stats(num_drv, num, impl), stats(den_drv, den, impl)
                    if a and b:
                        meds[impl] = a[1] / b[1]
                        cells.append(f"{meds[impl]:.2f}")
                    else:
                        cells.append(na_text(na, drv, num, impl))
                ratio = f"{meds['rust'] / meds['c']:.2f}" if len(meds) == 2 else "-"
                rows.append([what, "fraction", cells[0], cells[1], ratio, "-", better, ""])
                continue
            unit = units.get((drv, metric), "")
            cells, meds, mins, n = [], {}, {}, []
            for impl in ("c", "rust"):
                s = stats(drv, metric, impl)
                if s is None:
                    cells.append(na_text(na, drv, metric, impl))
                    continue
                meds[impl] = s[1]
                mins[impl] = s[0] if better == "lower" else s[2]
                n.append(s[3])
                if metric.startswith("ko_"):
                    cells.append(f"{s[1]:.0f}")
                else:
                    cells.append(f"{fmt(s[0])} / {fmt(s[1])} / {fmt(s[2])}")
            ratio = f"{meds['rust'] / meds['c']:.2f}" if len(meds) == 2 and meds["c"] else "-"
            best = (f"{mins['rust'] / mins['c']:.2f}"
                    if len(mins) == 2 and mins["c"] and not metric.startswith("ko_") else "-")
            note = "; ".join(x for x in (NOTES.get((drv, metric, "c")),) if x)
            rows.append([what + (f" [{metric}]" if not what.startswith("  ") else ""),
                         unit, cells[0], cells[1], ratio, best, better, note])
        tables[drv] = rows

    head = ["metric", "unit", "C min / median / max", "Rust min / median / max",
            "Rust/C (medians)", "Rust/C (best)", "better", "note"]
    date = datetime.date.today().isoformat()
    preamble = [
        f"mdev-rs benchmark, {date}: C samples vs Rust modules, one VM boot, "
        f"{len(rounds)} alternating rounds (C first in odd rounds).",
        "Debug kernel (lockdep, kmemleak, list debugging) under QEMU TCG: absolute numbers are "
        "inflated, compare the ratios.",
        "Rust/C: ratio of medians; for 'lower' metrics below 1 means Rust is faster, "
        "for 'higher' metrics above 1 means Rust is faster. Rust/C (best): ratio of the best "
        "samples (min time, max throughput), the least disturbed by other load on the host.",
    ] + [f"VM: {l}" for l in info] + [
        f"Kernel log during the run: {splats} warning/BUG/lockdep report(s).",
    ] + ([f"ERRORS: {', '.join(errors)}"] if errors else [])

    # Plain text.
    txt = preamble[:]
    for drv, rows in tables.items():
        widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
        txt += ["", f"== {drv} " + "=" * 60]
        txt.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        for r in rows:
            txt.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    (out / "results.txt").write_text("\n".join(txt) + "\n")

    # Markdown.
    md = [" ".join(preamble)]
    for drv, rows in tables.items():
        md += ["", f"### {drv}", "", "| " + " | ".join(head) + " |",
               "|" + "---|" * len(head)]
        md += ["| " + " | ".join(str(c).strip() for c in r) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(md) + "\n")

    # reStructuredText (csv-table).
    rst = []
    for drv, rows in tables.items():
        rst += [f".. csv-table:: {drv}", "   :header: " + ", ".join(f'"{h}"' for h in head),
                "   :widths: auto", ""]
        for r in rows:
            rst.append("   " + ", ".join('"' + str(c).strip().replace('"', '""') + '"' for c in r))
        rst.append("")
    (out / "results.rst").write_text("\n".join("- " + l for l in preamble) + "\n\n" + "\n".join(rst))
    return 0


def na_text(na, drv, metric, impl):
    why = na.get((drv, metric, impl))
    return f"n/a ({why})" if why else "-"


if __name__ == "__main__":
    sys.exit(main())
