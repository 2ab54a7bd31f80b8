/**
 * What Spark calls: the per-executor model cache, the partition function of the jobs, the {@code
 * spark.mamba.*} settings, UDFs, the SQL extension, the ML stage, data-parallel training. With the
 * jobs, the only code that imports Spark.
 */
package org.mambaspark.spark;
