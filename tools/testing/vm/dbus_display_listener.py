#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A display client of QEMU's D-Bus display (-display dbus,p2p=yes,gl=on).

usage: dbus_display_listener.py QMP_SOCKET|virsh:DOMAIN CONTROL_SOCKET

It is the screen of the mbochs end-to-end test: QEMU's vfio display
(hw/vfio/display.c) queries the device's plane, exports it with
VFIO_DEVICE_GET_GFX_DMABUF and hands the dma-buf to its displays; the
D-Bus display passes that very file descriptor to its listeners
(ui/dbus-listener.c, dbus_scanout_dmabuf(): ScanoutDMABUF on
org.qemu.Display1.Listener). This program is such a listener. It reads the
pixels from the dma-buf it was given, as a compositor would.

 1. On QMP_SOCKET (a QMP monitor of its own) it hands QEMU one end of a
    socket pair (getfd, then add_client protocol=@dbus-display): a
    peer-to-peer D-Bus connection to QEMU's display objects.
 2. It registers a listener on /org/qemu/Display1/Console_0 (the vfio
    device's console) over a second socket pair, and serves
    /org/qemu/Display1/Listener there.
 3. On CONTROL_SOCKET it takes one command per connection and answers one
    line:
      state             "scanout WxH stride S fourcc F modifier M scanouts N
                         updates N" of the last ScanoutDMABUF, or "none"
      shot PATH         writes the current dma-buf as a binary PPM to PATH:
                        "ok WxH ..." or "error ..." (e.g. mmap refused)
      quit
"""

import mmap
import os
import socket
import sys
import json
import array
import time

from gi.repository import Gio, GLib

LISTENER_PATH = "/org/qemu/Display1/Listener"
CONSOLE_PATH = "/org/qemu/Display1/Console_0"
FOURCC_XRGB8888 = 0x34325258  # "XR24"

# org.qemu.Display1.Listener as QEMU 10.0 calls it (ui/dbus-display1.xml).
LISTENER_XML = """
<node>
  <interface name="org.qemu.Display1.Listener">
    <method name="Scanout">
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <method name="Update">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <method name="ScanoutDMABUF">
      <arg type="h" name="dmabuf" direction="in"/>
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="fourcc" direction="in"/>
      <arg type="t" name="modifier" direction="in"/>
      <arg type="b" name="y0_top" direction="in"/>
    </method>
    <method name="UpdateDMABUF">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
    </method>
    <method name="Disable"/>
    <method name="MouseSet">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="on" direction="in"/>
    </method>
    <method name="CursorDefine">
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
      <arg type="i" name="hot_x" direction="in"/>
      <arg type="i" name="hot_y" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <property name="Interfaces" type="as" access="read"/>
  </interface>
</node>
"""


def log(msg):
    print(f"dbus-listener: {msg}", flush=True)


class Screen:
    """What QEMU last showed: the dma-buf of its last ScanoutDMABUF."""

    def __init__(self):
        self.fd = -1
        self.info = None
        self.scanouts = 0
        self.updates = 0
        self.surfaces = 0  # 2D Scanout calls (a surface, not a dma-buf)

    def scanout_dmabuf(self, fd, width, height, stride, fourcc, modifier, y0_top):
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        self.info = (width, height, stride, fourcc, modifier, y0_top)
        self.scanouts += 1

    def disable(self):
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1
        self.info = None

    def state(self):
        if self.info is None:
            return f"none scanouts {self.scanouts} surfaces {self.surfaces}"
        w, h, stride, fourcc, modifier, y0_top = self.info
        return (f"scanout {w}x{h} stride {stride} fourcc {fourcc:#x} modifier {modifier:#x} "
                f"y0_top {int(y0_top)} scanouts {self.scanouts} updates {self.updates}")

    def shot(self, path):
        """Writes the dma-buf's pixels (XRGB8888) as a PPM, row 0 first."""
        if self.info is None:
            return "error no dma-buf scanout"
        w, h, stride, fourcc, _, _ = self.info
        if fourcc != FOURCC_XRGB8888:
            return f"error fourcc {fourcc:#x} is not XRGB8888"
        size = stride * h
        try:
            # The dma-buf's own mmap(), read-only: what a compositor that
            # cannot import it into GL would do.
            m = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        except OSError as e:
            return f"error mmap of the dma-buf: {e.strerror} (errno {e.errno}); {self.state()}"
        with m:
            if stride == w * 4:
                px = m[:size]
            else:
                px = b"".join(m[y * stride:y * stride + w * 4] for y in range(h))
        rgb = bytearray(w * h * 3)
        rgb[0::3] = px[2::4]
        rgb[1::3] = px[1::4]
        rgb[2::3] = px[0::4]
        with open(path, "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (w, h))
            f.write(rgb)
        return "ok " + self.state()


def qmp_add_client(qmp_path, fd):
    """Hands QEMU FD as a peer-to-peer D-Bus display client."""
    s = socket.socket(socket.AF_UNIX)
    for _ in range(300):  # QEMU starts slowly under TCG
        try:
            s.connect(qmp_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(1)
    else:
        s.connect(qmp_path)
    f = s.makefile("r")

    def cmd(c, fds=()):
        data = (json.dumps(c) + "\n").encode()
        if fds:
            s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            s.sendall(data)
        while True:
            r = json.loads(f.readline())
            if "error" in r:
                raise RuntimeError(f"QMP {c['execute']}: {r['error']}")
            if "return" in r:
                return r["return"]

    f.readline()  # greeting
    cmd({"execute": "qmp_capabilities"})
    cmd({"execute": "getfd", "arguments": {"fdname": "dbus-display"}}, [fd])
    cmd({"execute": "add_client",
         "arguments": {"protocol": "@dbus-display", "fdname": "dbus-display"}})
    s.close()


def virsh_add_client(domain, fd):
    """The same through libvirt's monitor of DOMAIN (a libvirt-started QEMU,
    <graphics type='dbus' p2p='yes'>): virsh passes FD with getfd, and the
    fd stays in the one monitor connection libvirt keeps, for add_client."""
    import subprocess
    for c in ({"execute": "getfd", "arguments": {"fdname": "dbus-display"}},
              {"execute": "add_client",
               "arguments": {"protocol": "@dbus-display", "fdname": "dbus-display"}}):
        args = ["virsh", "-c", "qemu:///system", "qemu-monitor-command", domain]
        if c["execute"] == "getfd":
            args += ["--pass-fds", str(fd)]
        r = subprocess.run(args + [json.dumps(c)], pass_fds=(fd,), capture_output=True, text=True)
        if r.returncode != 0 or "error" in r.stdout:
            raise RuntimeError(f"virsh {c['execute']}: {r.stdout.strip()} {r.stderr.strip()}")


def connect(sock, flags=Gio.DBusConnectionFlags.NONE):
    """A peer-to-peer D-Bus connection over SOCK (QEMU is the server)."""
    stream = Gio.Socket.new_from_fd(sock.detach()).connection_factory_create_connection()
    return Gio.DBusConnection.new_sync(
        stream, None, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | flags, None, None)


def main():
    qmp_path, ctl_path = sys.argv[1], sys.argv[2]
    screen = Screen()
    loop = GLib.MainLoop()

    ours, qemus = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if qmp_path.startswith("virsh:"):
        virsh_add_client(qmp_path[len("virsh:"):], qemus.fileno())
    else:
        qmp_add_client(qmp_path, qemus.fileno())
    qemus.close()
    display = connect(ours)

    # The listener connection: QEMU authenticates it as the server once it
    # has the fd, right after answering RegisterListener; we serve the
    # listener object on it before it processes any call.
    lours, lqemus = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = Gio.UnixFDList.new_from_array([os.dup(lqemus.fileno())])
    lqemus.close()
    display.call_with_unix_fd_list_sync(
        None, CONSOLE_PATH, "org.qemu.Display1.Console", "RegisterListener",
        GLib.Variant("(h)", (0,)), None, Gio.DBusCallFlags.NONE, -1, fds, None)
    listener = connect(lours, Gio.DBusConnectionFlags.DELAY_MESSAGE_PROCESSING)

    def on_call(conn, sender, path, iface, method, params, invocation):
        if method == "ScanoutDMABUF":
            handle, w, h, stride, fourcc, modifier, y0_top = params.unpack()
            fdl = invocation.get_message().get_unix_fd_list()
            fd = fdl.get(handle) if fdl else -1
            if fd < 0:
                log("ScanoutDMABUF without a file descriptor")
            else:
                screen.scanout_dmabuf(fd, w, h, stride, fourcc, modifier, y0_top)
                log(screen.state())
        elif method == "UpdateDMABUF":
            screen.updates += 1
        elif method == "Scanout":
            screen.surfaces += 1
        elif method == "Disable":
            screen.disable()
            log("disabled")
        invocation.return_value(None)

    def on_get_property(conn, sender, path, iface, prop):
        # Only the base interface: no shared-memory map, no D3D.
        return GLib.Variant("as", [])

    node = Gio.DBusNodeInfo.new_for_xml(LISTENER_XML)
    listener.register_object(LISTENER_PATH, node.interfaces[0], on_call, on_get_property, None)
    listener.start_message_processing()
    listener.connect("closed", lambda *a: loop.quit())
    display.connect("closed", lambda *a: loop.quit())
    log(f"listening on {CONSOLE_PATH}")

    try:
        os.unlink(ctl_path)
    except FileNotFoundError:
        pass
    ctl = socket.socket(socket.AF_UNIX)
    ctl.bind(ctl_path)
    ctl.listen(4)

    def on_ctl(_fd, _cond):
        c, _ = ctl.accept()
        with c:
            words = c.makefile("r").readline().split(maxsplit=1)
            if words[:1] == ["state"]:
                answer = screen.state()
            elif words[:1] == ["shot"] and len(words) == 2:
                answer = screen.shot(words[1].strip())
            elif words[:1] == ["quit"]:
                answer = "bye"
                loop.quit()
            else:
                answer = f"error unknown command {words!r}"
            c.sendall((answer + "\n").encode())
        return True

    GLib.io_add_watch(ctl.fileno(), GLib.IO_IN, on_ctl)
    loop.run()
    log("QEMU closed the display connection" if not display.is_closed() else "closed")


if __name__ == "__main__":
    main()
