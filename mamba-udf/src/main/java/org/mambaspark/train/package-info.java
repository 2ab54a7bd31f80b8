/**
 * Training without Spark: AdamW, gradient sums and clipping, learning-rate schedules, the seeded
 * token sampler, and the training step the single-process and the Spark training share.
 */
package org.mambaspark.train;
