/**
 * The model: configuration, weights, the forward pass ({@link org.mambaspark.model.MambaModel}),
 * its backward ({@link org.mambaspark.model.Backprop}), generation, sampling, streaming,
 * initialisation, and the backends a model runs on (CPU, or a GPU through {@code
 * org.mambaspark.kernel}).
 */
package org.mambaspark.model;
