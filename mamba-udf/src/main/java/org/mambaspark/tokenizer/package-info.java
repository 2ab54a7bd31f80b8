/** Byte-level and Hugging Face (tokenizer.json) tokenizers, found beside a model. */
package org.mambaspark.tokenizer;
