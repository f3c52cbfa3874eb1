// SPDX-License-Identifier: GPL-2.0
/* C shims for the dma-buf exporter abstraction (see dma_buf.h). */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/module.h>

#include "dma_buf.h"

/*
 * Exports a dma-buf owned by this module: the dma-buf core holds a module
 * reference until the buffer is released, so the ops stay loaded.
 */
struct dma_buf *kx_dma_buf_export(const struct dma_buf_ops *ops, size_t size,
				  int flags, void *priv)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);

	exp_info.ops = ops;
	exp_info.size = size;
	exp_info.flags = flags;
	exp_info.priv = priv;
	return dma_buf_export(&exp_info);
}

void kx_get_dma_buf(struct dma_buf *dmabuf)
{
	get_dma_buf(dmabuf);
}

unsigned int kx_dma_get_max_seg_size(struct device *dev)
{
	return dma_get_max_seg_size(dev);
}
