// SPDX-License-Identifier: GPL-2.0
/*
 * C shims for macros and inline functions the Rust abstractions need.
 * Included by each module's kernel_ext_helpers.c.
 */
#include <linux/err.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>

#include "helpers.h"

struct vfio_device *kx_vfio_alloc_device(struct device *dev,
					 const struct vfio_device_ops *ops)
{
	struct kx_vfio_device *kdev;

	kdev = vfio_alloc_device(kx_vfio_device, vdev, dev, ops);
	if (IS_ERR(kdev))
		return ERR_CAST(kdev);
	return &kdev->vdev;
}

void kx_vfio_put_device(struct vfio_device *vdev)
{
	vfio_put_device(vdev);
}

void *kx_vfio_device_data(struct vfio_device *vdev)
{
	return container_of(vdev, struct kx_vfio_device, vdev)->data;
}

void kx_vfio_device_set_data(struct vfio_device *vdev, void *data)
{
	container_of(vdev, struct kx_vfio_device, vdev)->data = data;
}

struct device *kx_vfio_device_dev(struct vfio_device *vdev)
{
	return vdev->dev;
}

void *kx_vmalloc_user(unsigned long size)
{
	return vmalloc_user(size);
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
