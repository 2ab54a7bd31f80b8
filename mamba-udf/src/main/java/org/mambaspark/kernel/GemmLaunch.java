package org.mambaspark.kernel;

/**
 * Host side of {@link MambaKernel#OP_GEMM}: sets the product's fields and launches it as a GEMV (M
 * ≤ 8 rows), a split-K GEMM plus its sum, or one tiled GEMM — shared by the whole model ({@link
 * LaunchContext}) and the tests' single-op harness, which launch differently.
 */
final class GemmLaunch {
  private GemmLaunch() {}

  /** How the caller launches an op (its own profiling, local memory, fallback checks). */
  interface Launcher {
    void launch(int op, int global, int local);
  }

  /** Sets the product's fields and launches it. */
  static void gemm(MambaKernel k, Launcher l, Product p) {
    int M = p.M();
    int N = p.N();
    int K = p.K();
    k.gM = M;
    k.gN = N;
    k.gK = K;
    k.gASel = p.a().sel();
    k.gAOff = p.a().off();
    k.gARs = p.a().rs();
    k.gACs = p.a().cs();
    k.gBSel = p.b().sel();
    k.gBOff = p.b().off();
    k.gBKs = p.b().rs();
    k.gBNs = p.b().cs();
    k.gCSel = p.c().sel();
    k.gCOff = p.c().off();
    k.gCRs = p.c().rs();
    k.gBiasOff = p.biasOff();
    k.gAccum = p.accumulate() ? 1 : 0;
    k.gAct = p.act();
    int splits = MambaKernel.splitsFor(M, N, K, k.part.length);
    if (M <= MambaKernel.GEMV_MAX_M) {
      l.launch(MambaKernel.OP_GEMV, N * 128, 128);
    } else if (splits > 1) {
      int kPer = MambaKernel.kPerSplit(K, splits);
      k.gSplit = (K + kPer - 1) / kPer;
      k.gKPer = kPer;
      k.gPartOff = 0;
      l.launch(
          MambaKernel.OP_GEMM,
          tiles(M, N) * k.gSplit * MambaKernel.GEMM_THREADS,
          MambaKernel.GEMM_THREADS);
      l.launch(MambaKernel.OP_GEMM_SPLIT_FIN, M * N, 256);
      k.gSplit = 1;
    } else {
      launchTiles(k, l);
    }
  }

  /** One launch of the GEMM whose fields are set (no split). */
  static void launchTiles(MambaKernel k, Launcher l) {
    l.launch(
        MambaKernel.OP_GEMM,
        tiles(k.gM, k.gN) * MambaKernel.GEMM_THREADS,
        MambaKernel.GEMM_THREADS);
  }

  private static int tiles(int M, int N) {
    return ((M + MambaKernel.GBM - 1) / MambaKernel.GBM)
        * ((N + MambaKernel.GBN - 1) / MambaKernel.GBN);
  }
}
