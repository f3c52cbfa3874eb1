#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Checks an mdev-probe JSON report field by field against what the type
and implementation must report (see Documentation/mdev-rs/management.rst,
mdpy.rst, mbochs.rst and the C samples' sources).

usage: probe_check.py REPORT.json IMPL(c|rust) TYPE SOURCE(type|device)[+stream] [REPORT IMPL TYPE SOURCE]...
("+stream": the report was made with --stream, which reads the migration
stream; without it nothing may have read it or changed the device's state)
Prints for each report, in order, one line: "ok N fields as expected" or
"bad ..." with the mismatches; exit status 1 if any was bad. (One run for
many reports: a Python start costs seconds under TCG.)"""
import json
import sys

MB = 1 << 20
MDPY = {"mdpy-vga": (640, 480), "mdpy-xga": (1024, 768), "mdpy-hd": (1920, 1080)}
# memory, EDID max_xres x max_yres (0: no limit)
MBOCHS = {"mbochs-small": (4 * MB, 800, 600), "mbochs-medium": (16 * MB, 1920, 1440),
          "mbochs-large": (64 * MB, 0, 0)}


def pow2(n):
    p = 1
    while p < n:
        p <<= 1
    return p


def check(path, impl, typ, source):
    source, plus, _ = source.partition("+")
    stream = plus == "+"
    try:
        r = json.load(open(path))
    except (OSError, ValueError) as e:
        return f"bad {path}: not a JSON report: {e}"
    bad, n = [], 0

    def eq(name, got, want):
        nonlocal n
        n += 1
        if got != want:
            bad.append(f"{name}: {got!r}, expected {want!r}")

    def get(*keys):
        v = r
        for k in keys:
            if isinstance(v, dict):
                v = v.get(k)
            elif isinstance(v, list) and isinstance(k, int) and k < len(v):
                v = v[k]
            else:
                return None
        return v

    def region(i):
        for g in r.get("regions", []):
            if g.get("index") == i:
                return g
        return {}

    driver = "mdpy" if typ.startswith("mdpy") else "mbochs"
    eq("schema", get("schema"), "mdev-probe/1.1")
    eq("source", get("source"), source)
    eq("parent", get("parent"), driver)
    eq("driver", get("driver"), driver)
    eq("type.id", get("type", "id"), typ)
    eq("type.device_api", get("type", "device_api"), "vfio-pci")
    eq("vfio.device_api", get("vfio", "device_api"), "vfio-pci")
    eq("vfio.device_api_matches_sysfs", get("vfio", "device_api_matches_sysfs"), True)
    eq("vfio.flags has pci", "pci" in (get("vfio", "flags_decoded") or []), True)
    # Only the Rust drivers advertise VFIO_DEVICE_FLAGS_RESET; both reset.
    eq("reset.flag", get("reset", "flag"), impl == "rust")
    eq("reset.ioctl", get("reset", "ioctl"), "ok" if source == "type" else "not tried")

    if driver == "mdpy":
        w, h = MDPY[typ]
        mem = pow2(w * h * 4)
        eq("vfio.num_regions", get("vfio", "num_regions"), 9)
        eq("regions[0].size", region(0).get("size"), mem)
        eq("regions[0].flags", region(0).get("flags_decoded"), ["read", "write", "mmap"])
        eq("regions[16].size (display region)", region(16).get("size"), mem)
        eq("display.kind", get("display", "kind"), "region")
        eq("display.probe_region", get("display", "probe_region"), "ok")
        eq("display.probe_dmabuf is refused", get("display", "probe_dmabuf") != "ok", True)
        eq("display.needs_gl", get("display", "needs_gl"), False)
        eq("edid", get("edid"), None)
        eq("plane.primary.query", get("plane", "primary", "query"), "ok")
        eq("plane.primary.enabled", get("plane", "primary", "enabled"), True)
        eq("plane.primary.drm_format", get("plane", "primary", "drm_format"), "XR24")
        eq("plane.primary.width", get("plane", "primary", "width"), w)
        eq("plane.primary.height", get("plane", "primary", "height"), h)
        eq("plane.primary.stride", get("plane", "primary", "stride"), w * 4)
        eq("plane.primary.size", get("plane", "primary", "size"), mem)
        eq("plane.primary.id (region_index)", get("plane", "primary", "id"), 16)
        eq("plane.cursor", get("plane", "cursor"), None)
        eq("qemu.display", get("qemu", "display"), None)
        eq("libvirt.graphics has no gl", "<gl" in (get("libvirt", "graphics") or "<gl"), False)
    else:
        mem, mx, my = MBOCHS[typ]
        eq("vfio.num_regions", get("vfio", "num_regions"), 10)
        eq("regions[0].size (VRAM)", region(0).get("size"), mem)
        eq("regions[0] mmap", "mmap" in (region(0).get("flags_decoded") or []), True)
        eq("regions[2].size (MMIO)", region(2).get("size"), 4096)
        eq("regions[9] caps", [c.get("name") for c in region(9).get("caps", [])], ["type gfx/edid"])
        eq("display.kind", get("display", "kind"), "dmabuf")
        eq("display.probe_dmabuf", get("display", "probe_dmabuf"), "ok")
        eq("display.probe_region is refused", get("display", "probe_region") != "ok", True)
        eq("display.needs_gl", get("display", "needs_gl"), True)
        eq("edid.region_index", get("edid", "region_index"), 9)
        eq("edid.edid_offset", get("edid", "edid_offset"), 0x800)
        eq("edid.edid_max_size", get("edid", "edid_max_size"), 0x400)
        eq("edid.max_xres", get("edid", "max_xres"), mx)
        eq("edid.max_yres", get("edid", "max_yres"), my)
        eq("plane.primary.query", get("plane", "primary", "query"), "ok")
        eq("plane.primary.enabled (no mode set yet)", get("plane", "primary", "enabled"), False)
        eq("plane.cursor.query", get("plane", "cursor", "query"), "ok")
        # The display this project proved without a GPU, never egl-headless
        # (it crashes QEMU at the first frame there), whose need is said.
        eq("qemu.display", get("qemu", "display"), "-display dbus,p2p=on,gl=on")
        qn = get("qemu", "notes") or []
        eq("qemu.notes offer no egl-headless display", [n for n in qn if "-display egl-headless," in n], [])
        eq("qemu.notes say egl-headless needs a GPU's render node",
           any("egl-headless needs a GPU's render node" in n for n in qn), True)
        eq("qemu.notes name the D-Bus client and gtk,gl=on",
           any("dbus_display_listener.py" in n for n in qn) and any("-display gtk,gl=on" in n for n in qn), True)
        eq("libvirt.graphics is dbus with gl",
           (get("libvirt", "graphics") or "").startswith("<graphics type='dbus'>") and
           "<gl enable='yes'/>" in (get("libvirt", "graphics") or ""), True)

    on = "on"
    uuid = "$UUID" if source == "type" else get("uuid")
    eq("qemu.device", get("qemu", "device"),
       f"-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid},display={on}")
    eq("libvirt.hostdev display='on' and the UUID",
       "display='on'" in (get("libvirt", "hostdev") or "") and f"uuid='{uuid}'" in get("libvirt", "hostdev"), True)

    # Every note checked against the report: the migration note claims
    # enable-migration=auto only if DMA logging was probed ok.
    mnote = [n for n in (get("qemu", "notes") or []) if n.startswith("migration:")]
    eq("one migration note", len(mnote), 1)
    mnote = (mnote or [""])[0]
    eq("migration note claims enable-migration=auto only with DMA logging",
       "enable-migration=auto accepts it without" in mnote, get("migration", "dma_logging") == "ok")
    eq("migration note says none without migration",
       mnote.startswith("migration: none"), not get("migration", "supported"))
    eq("EDID note only with an EDID region",
       any(n.startswith("EDID:") for n in get("qemu", "notes") or []), get("edid") is not None)

    if impl == "c":
        eq("migration.state_after", get("migration", "state_after"), None)
        eq("migration.supported", get("migration", "supported"), False)
        eq("migration.probe", get("migration", "probe"), "ENOTTY")
        eq("migration.stream", get("migration", "stream"), None)
        eq("migration.dma_logging", get("migration", "dma_logging"), None)
    elif not stream:
        # Without --stream: queries only, the device left as it was.
        eq("migration.supported", get("migration", "supported"), True)
        eq("migration.state", get("migration", "state"), "running")
        eq("migration.state_after", get("migration", "state_after"), "running")
        eq("migration.dma_logging", get("migration", "dma_logging"), "ok")
        eq("migration.stream.obtained", get("migration", "stream", "obtained"), "not read")
        eq("migration.stream.header", get("migration", "stream", "header"), None)
        eq("migration.stream.error says --stream",
           "--stream" in (get("migration", "stream", "error") or ""), True)
        eq("migration.stop_copy_size.bytes is known", isinstance(get("migration", "stop_copy_size", "bytes"), int), True)
    else:
        eq("migration.state_after (back to RUNNING after the stream)", get("migration", "state_after"), "running")
        eq("migration.supported", get("migration", "supported"), True)
        eq("migration.flags_decoded", get("migration", "flags_decoded"), ["stop-copy", "p2p", "pre-copy"])
        eq("migration.state", get("migration", "state"), "running")
        eq("migration.dma_logging", get("migration", "dma_logging"), "ok")
        eq("migration.stream.error", get("migration", "stream", "error"), None)
        length = get("migration", "stream", "length")
        eq("migration.stop_copy_size.bytes == stream length", get("migration", "stop_copy_size", "bytes"), length)
        eq("migration.stop_copy_size.state", get("migration", "stop_copy_size", "state"), "running")
        hd = get("migration", "stream", "header") or {}
        eq("stream.magic", hd.get("magic"), "MDEVRSMG")
        eq("stream.major", hd.get("major"), 2)
        eq("stream.minor", hd.get("minor"), 0)
        eq("stream.header_len", hd.get("header_len"), 80)
        eq("stream.driver", hd.get("driver"), driver)
        eq("stream.type", hd.get("type"), typ)
        eq("stream.mem_size", hd.get("mem_size"), mem)
        eq("stream.page_size", hd.get("page_size"), 4096)
        eq("stream.flags", hd.get("flags"), 0)
        if driver == "mdpy":
            # header, config section, mode section, every page in runs of 256 pages (one
            # 16-byte section header each), end marker
            pages = mem // 4096
            eq("stream length (mdpy: every framebuffer page, in runs)", length,
               80 + (16 + 256) + (16 + 16) + pages * 4096 + -(-pages // 256) * 16 + 16)

    if bad:
        return f"bad {len(bad)} of {n} fields wrong: " + "; ".join(bad)
    return f"ok {n} fields as expected"


def main():
    args, failed = sys.argv[1:], False
    for i in range(0, len(args) - 3, 4):
        line = check(*args[i:i + 4])
        failed |= line.startswith("bad")
        print(line.replace("\n", " "))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
