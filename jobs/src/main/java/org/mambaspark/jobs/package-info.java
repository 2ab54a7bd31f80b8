/**
 * The spark-submit applications (score, embed, generate, train and their benchmarks): driver-side
 * checks before Spark starts, output staging, progress and summaries; also run in an embedded Spark
 * by {@code bin/mamba}.
 */
package org.mambaspark.jobs;
