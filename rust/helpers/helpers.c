// SPDX-License-Identifier: GPL-2.0
/*
 * C shims for macros and inline functions the Rust abstractions need.
 * Included by each module's kernel_ext_helpers.c.
 */
#include <linux/err.h>
#include <linux/rmap.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "helpers.h"

void kx_vfio_get_device(struct vfio_device *vdev)
{
	get_device(&vdev->device);
}

void kx_vfio_put_device(struct vfio_device *vdev)
{
	vfio_put_device(vdev);
}

/* Only before registration: the Rust device sets its final ops once its data is initialised. */
void kx_vfio_device_set_ops(struct vfio_device *vdev, const struct vfio_device_ops *ops)
{
	vdev->ops = ops;
}

/* Only before registration, as vfio_device_ops: the migration and DMA logging callbacks. */
void kx_vfio_device_set_migration(struct vfio_device *vdev, u32 flags,
				  const struct vfio_migration_ops *mig_ops,
				  const struct vfio_log_ops *log_ops)
{
	vdev->migration_flags = flags;
	vdev->mig_ops = mig_ops;
	vdev->log_ops = log_ops;
}

bool kx_vfio_device_precopy_info_v2(struct vfio_device *vdev)
{
	return READ_ONCE(vdev->precopy_info_v2);
}

/*
 * Write-protects page (mapped at file page offset pgoff) in every user
 * mapping of the device's files: they all share the device inode's
 * address space (vfio_device_open_file(), vfio_device_fops_cdev_open()).
 * The caller holds the page lock. Returns the number of PTEs changed.
 */
int kx_vfio_device_wrprotect_page(struct vfio_device *vdev, pgoff_t pgoff, struct page *page)
{
	return mapping_wrprotect_range(vdev->inode->i_mapping, pgoff, page_to_pfn(page), 1);
}

/*
 * Removes every user mapping of the device's file pages pgoff..pgoff+pages
 * (shared and private copies), as vfio-pci's BAR zap does: the next access
 * faults and is served by the mapping's handler.
 */
void kx_vfio_device_zap_range(struct vfio_device *vdev, pgoff_t pgoff, pgoff_t pages)
{
	unmap_mapping_range(vdev->inode->i_mapping, (loff_t)pgoff << PAGE_SHIFT,
			    (loff_t)pages << PAGE_SHIFT, true);
}

/*
 * Zeroed vmalloc memory charged to the caller's memory cgroup; its pages are
 * mapped into user space one by one by fault handlers (vmalloc_user() would
 * not be charged, and only its remap_vmalloc_range() needs VM_USERMAP).
 */
void *kx_vmalloc_zeroed_account(unsigned long size)
{
	return __vmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
}

/* alloc_workqueue() is a macro: an unbound workqueue named `name`. */
struct workqueue_struct *kx_alloc_unbound_workqueue(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
}

struct class *kx_class_create(const char *name)
{
	return class_create(name);
}

/* device_create() is variadic; this is its fixed-format form. */
struct device *kx_device_create(struct class *class, const char *name)
{
	return device_create(class, NULL, 0, NULL, "%s", name);
}

/* Dynamically allocated attributes need a lockdep key (sysfs_attr_init()). */
void kx_sysfs_attr_init(struct attribute *attr)
{
	sysfs_attr_init(attr);
}
