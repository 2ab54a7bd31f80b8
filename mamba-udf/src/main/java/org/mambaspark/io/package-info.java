/**
 * Checkpoints in the Hugging Face layout: safetensors files (every header claim checked before any
 * read), config.json, sharded indexes, atomic writes. Every failure names the file and the tensor.
 */
package org.mambaspark.io;
