/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for the dma-buf exporter abstraction (rust/dma_buf.rs):
 * DEFINE_DMA_BUF_EXPORT_INFO() is a macro (it records THIS_MODULE, so each
 * module links its own copy); get_dma_buf() and dma_get_max_seg_size() are
 * inline functions.
 */
#ifndef KERNEL_EXT_HELPERS_DMA_BUF_H
#define KERNEL_EXT_HELPERS_DMA_BUF_H

#include <linux/types.h>

struct device;
struct dma_buf;
struct dma_buf_ops;

struct dma_buf *kx_dma_buf_export(const struct dma_buf_ops *ops, size_t size,
				  int flags, void *priv);
void kx_get_dma_buf(struct dma_buf *dmabuf);
unsigned int kx_dma_get_max_seg_size(struct device *dev);

#endif /* KERNEL_EXT_HELPERS_DMA_BUF_H */
