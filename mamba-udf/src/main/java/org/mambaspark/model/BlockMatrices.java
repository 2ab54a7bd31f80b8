package org.mambaspark.model;

import org.mambaspark.ops.WeightMatrix;

/**
 * One block's big matrices as its mixer's forward reads them, in the model's weight format: fp32
 * views of the {@link BlockWeights} arrays, or their bf16 / int8 copies.
 */
final class BlockMatrices {
  final WeightMatrix inProj; //  (2ED, D) Mamba-1; (I, D) Mamba-2
  final WeightMatrix xProj; //   (R+2N, ED) Mamba-1; null for Mamba-2
  final WeightMatrix outProj; // (D, ED)

  BlockMatrices(WeightMatrix inProj, WeightMatrix xProj, WeightMatrix outProj) {
    this.inProj = inProj;
    this.xProj = xProj;
    this.outProj = outProj;
  }
}
