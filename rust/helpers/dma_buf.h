/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims for the dma-buf exporter abstraction (rust/dma_buf.rs):
 * DEFINE_DMA_BUF_EXPORT_INFO() is a macro (it records THIS_MODULE, so each
 * module links its own copy) and get_dma_buf() an inline function.
 */
#ifndef KERNEL_EXT_HELPERS_DMA_BUF_H
#define KERNEL_EXT_HELPERS_DMA_BUF_H

#include <linux/types.h>

struct dma_buf;
struct dma_buf_ops;

struct dma_buf *kx_dma_buf_export(const struct dma_buf_ops *ops, size_t size,
				  int flags, void *priv);
void kx_get_dma_buf(struct dma_buf *dmabuf);

#endif /* KERNEL_EXT_HELPERS_DMA_BUF_H */
