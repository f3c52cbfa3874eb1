/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Header that bindgen turns into rust/generated/bindings.rs: the C API our
 * abstractions need and the kernel crate's bindings do not have yet.
 */

#include <linux/anon_inodes.h>
#include <linux/fb.h>
#include <linux/fs.h>
#include <linux/iova_bitmap.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>
#include <uapi/linux/vfio.h>
#include <drm/drm_fourcc.h>

#include "helpers/helpers.h"

/* Macros bindgen cannot see as constants (expressions, casts, _IO*). */
const u32 RUST_CONST_HELPER_DRM_FORMAT_XRGB8888 = DRM_FORMAT_XRGB8888;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_GET_IRQ_INFO = VFIO_DEVICE_GET_IRQ_INFO;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_RESET = VFIO_DEVICE_RESET;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_QUERY_GFX_PLANE = VFIO_DEVICE_QUERY_GFX_PLANE;
const u32 RUST_CONST_HELPER_VFIO_DEVICE_GET_GFX_DMABUF = VFIO_DEVICE_GET_GFX_DMABUF;
const u32 RUST_CONST_HELPER_VFIO_MIG_GET_PRECOPY_INFO = VFIO_MIG_GET_PRECOPY_INFO;
