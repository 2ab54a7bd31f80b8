/**
 * The GPU path through Aparapi (OpenCL), the only package that imports Aparapi: the selective scan
 * as a chunked parallel prefix sum, its backward, the layer's other kernels, a whole-model runner
 * with weights resident on the device, and their benchmark.
 */
package org.mambaspark.kernel;
