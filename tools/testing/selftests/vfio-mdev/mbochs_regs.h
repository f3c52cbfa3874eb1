/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mbochs device as user space programs it: the bochs DISPI registers in
 * BAR2 and the DRM plane types of VFIO_DEVICE_QUERY_GFX_PLANE. Shared by the
 * kselftest and the benchmark.
 */
#ifndef MBOCHS_REGS_H
#define MBOCHS_REGS_H

/* DRM_PLANE_TYPE_* (include/drm/drm_plane.h, not uapi) */
#define PLANE_OVERLAY 0
#define PLANE_PRIMARY 1
#define PLANE_CURSOR 2

/* bochs DISPI interface in BAR2 (16-bit registers from 0x500) */
#define DISPI_BASE 0x500
#define DISPI_ID 0x0
#define DISPI_XRES 0x1
#define DISPI_YRES 0x2
#define DISPI_BPP 0x3
#define DISPI_ENABLE 0x4
#define DISPI_BANK 0x5
#define DISPI_VIRT_WIDTH 0x6
#define DISPI_VIRT_HEIGHT 0x7
#define DISPI_X_OFFSET 0x8
#define DISPI_Y_OFFSET 0x9
#define DISPI_VIDEO_MEMORY_64K 0xa
#define DISPI_COUNT 0xb
#define DISPI_ID5 0xB0C5
#define DISPI_ENABLED 0x01
#define DISPI_LFB_ENABLED 0x40

#endif /* MBOCHS_REGS_H */
