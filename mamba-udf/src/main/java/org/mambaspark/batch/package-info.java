/**
 * The partition-level work of the jobs without Spark: documents (token ids in, a result or an error
 * out) sorted by length, batched, streamed in pieces when long, through a {@link
 * org.mambaspark.model.ModelRunner} on the CPU or a GPU.
 */
package org.mambaspark.batch;
