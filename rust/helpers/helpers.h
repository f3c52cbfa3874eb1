/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for macros and inline functions the Rust abstractions need.
 * Each module links its own copy (see the top-level Kbuild).
 */
#ifndef KERNEL_EXT_HELPERS_H
#define KERNEL_EXT_HELPERS_H

#include <linux/device.h>
#include <linux/mdev.h>
#include <linux/vfio.h>

void kx_vfio_get_device(struct vfio_device *vdev);
void kx_vfio_put_device(struct vfio_device *vdev);
void kx_vfio_device_set_ops(struct vfio_device *vdev, const struct vfio_device_ops *ops);
void kx_vfio_device_set_migration(struct vfio_device *vdev, u32 flags,
				  const struct vfio_migration_ops *mig_ops,
				  const struct vfio_log_ops *log_ops);
bool kx_vfio_device_precopy_info_v2(struct vfio_device *vdev);
int kx_vfio_device_wrprotect_page(struct vfio_device *vdev, pgoff_t pgoff, struct page *page);
void kx_vfio_device_zap_range(struct vfio_device *vdev, pgoff_t pgoff, pgoff_t pages);

void *kx_vmalloc_zeroed_account(unsigned long size);
struct workqueue_struct;
struct workqueue_struct *kx_alloc_unbound_workqueue(const char *name);

struct class *kx_class_create(const char *name);
struct device *kx_device_create(struct class *class, const char *name);



struct attribute;
void kx_sysfs_attr_init(struct attribute *attr);
#include "fbdev.h"

/* Refcounted pages and the dma-buf exporter (kx_dma_buf). */
#include "page.h"
#include "dma_buf.h"

#endif /* KERNEL_EXT_HELPERS_H */
