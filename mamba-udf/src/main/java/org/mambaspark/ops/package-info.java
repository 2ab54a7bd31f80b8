/**
 * The numerical kernels as paired {@code xxxForward} / {@code xxxBackward} static methods over flat
 * {@code float[]} arrays with shape comments: matmul, selective scan, conv, RMSNorm, activations,
 * AdamW. Each {@code *Simd} class holds a Vector API fast path next to its plain reference.
 */
package org.mambaspark.ops;
