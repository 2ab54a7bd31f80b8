package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link SelectiveScan#scanForward} vectorized across channels: one register holds VL consecutive
 * channels e of one batch row, the recurrence runs over t, and the loop over the N states is
 * inside. Loaded only when {@link Simd#ENABLED}. The channel tail (ED not a multiple of VL) runs
 * the same arithmetic through a masked vector.
 */
final class SelectiveScanSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  /** State updates (exp, two multiply-adds) below which a piece is not worth another thread. */
  private static final int SCAN_GRAIN = 1 << 15;

  /**
   * Steps whose decay factors exp(Δ_t A) and gate sigmoids are computed ahead, one {@link
   * VectorMath} call each (RUN·N·VL floats of factors: 16 KB for N = 16 with AVX-512), so that the
   * recurrence's loop body holds only multiply-adds.
   */
  private static final int RUN = 16;

  private SelectiveScanSimd() {}

  static void scanForward(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    int blocks = (ED + VL - 1) / VL;
    // pieces of at least SCAN_GRAIN state updates: a decode step's scan (L = 1, some 25k updates)
    // runs on the caller, cheaper than handing half of it to a worker that must be woken
    Parallel.forRange(
        B * blocks,
        Math.max(1, SCAN_GRAIN / (L * VL * N)),
        (from, to) -> {
          float[] as = new float[Math.min(L, RUN) * N * VL], sg = new float[Math.min(L, RUN) * VL];
          for (int job = from; job < to; job++) {
            int b = job / blocks;
            int e0 = (job - b * blocks) * VL;
            scanBlock(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, b, e0, L, ED, N, as, sg);
          }
        });
  }

  /** Channel blocks (VL channels each) a piece of the decode step takes: some 20 µs of work. */
  private static final int STEP_BLOCKS = 8;

  /**
   * {@link SelectiveScan#stepForward}: per block of VL channels of a row, dt_proj's rows, softplus
   * and the scan step; the blocks in pieces taken one at a time (a worker that comes late leaves
   * its pieces to the caller).
   */
  static void stepForward(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] dtProj,
      float[] dtBias,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int ED,
      int N) {
    int blocks = (ED + VL - 1) / VL, P = R + 2 * N;
    Parallel.forChunks(
        B * blocks,
        STEP_BLOCKS,
        (from, to) -> {
          float[] as = new float[N * VL], sg = new float[VL];
          for (int job = from; job < to; job++) {
            int b = job / blocks;
            int e0 = (job - b * blocks) * VL, e1 = Math.min(ED, e0 + VL);
            MatmulSimd.dotRows(delta, b * ED, ED, dbc, b * P, P, dtProj, dtBias, 1, R, e0, e1);
            ActivationsSimd.softplus(delta, b * ED + e0, e1 - e0);
            scanBlock(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, b, e0, 1, ED, N, as, sg);
          }
        });
  }

  private static void scanBlock(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int b,
      int e0,
      int L,
      int ED,
      int N,
      float[] as,
      float[] sg) {
    var m = S.indexInRange(e0, ED);
    int P = R + 2 * N, lanes = Math.min(VL, ED - e0);
    int hb = b * N * ED + e0;
    FloatVector dSkip = FloatVector.fromArray(S, D, e0, m);
    for (int t0 = 0; t0 < L; t0 += RUN) {
      int t1 = Math.min(L, t0 + RUN), first = b * L + t0;
      VectorMath.expOfProducts(as, 0, delta, first * ED + e0, ED, t1 - t0, A, e0, ED, N, lanes);
      VectorMath.sigmoids(sg, 0, z, first * zStride + zOff + e0, zStride, t1 - t0, lanes);
      for (int t = t0; t < t1; t++) {
        int row = b * L + t, k = t - t0;
        int ro = row * ED + e0;
        FloatVector x = FloatVector.fromArray(S, u, ro, m);
        FloatVector dtx = FloatVector.fromArray(S, delta, ro, m).mul(x);
        int bOff = row * P + R, cOff = bOff + N;
        FloatVector acc = dSkip.mul(x);
        for (int n = 0; n < N; n++) {
          int ho = hb + n * ED;
          FloatVector a = FloatVector.fromArray(S, as, (k * N + n) * VL);
          FloatVector hn = FloatVector.fromArray(S, h, ho, m).fma(a, dtx.mul(dbc[bOff + n]));
          hn.intoArray(h, ho, m);
          acc = hn.mul(dbc[cOff + n]).add(acc);
        }
        FloatVector zz = FloatVector.fromArray(S, z, row * zStride + zOff + e0, m);
        acc.mul(zz.mul(FloatVector.fromArray(S, sg, k * VL))).intoArray(y, ro, m);
      }
    }
  }

  /**
   * {@link SelectiveScan#scanBackward} vectorized across channels. Channel blocks are split into a
   * fixed number of groups (independent of the thread count, so the result is too); a group owns
   * its channels' dA, dD, du, dΔ, dz and keeps a partial (B, L, 2N) of dB | dC, the sums over
   * channels, added in group order at the end.
   */
  static void scanBackward(
      float[] du,
      float[] ddelta,
      float[] dA,
      float[] ddbc,
      float[] dD,
      float[] dz,
      float[] dy,
      float[] hChunks,
      int T,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    int P = R + 2 * N, chunks = SelectiveScan.chunkCount(L, T);
    int blocks = (ED + VL - 1) / VL;
    int groups = Math.min(blocks, 16);
    float[][] dBCs = new float[groups][];
    Parallel.forEachBlock(
        groups,
        grp -> {
          float[] dBC = new float[B * L * 2 * N]; // (B, L, 2N)
          dBCs[grp] = dBC;
          float[] hs =
              new float
                  [(T + 1) * N * VL]; // states h_{t0-1} .. h_{t1-1} of a chunk, VL channels each
          float[] as = new float[T * N * VL]; //       exp(Δ_t A) of the chunk
          float[] sg = new float[T * VL]; //           σ(z_t) of the chunk
          float[] gs = new float[N * VL]; //           adjoint carried from later steps
          float[] dAacc = new float[N * VL];
          for (int blk = grp * blocks / groups; blk < (grp + 1) * blocks / groups; blk++) {
            int e0 = blk * VL;
            backwardBlock(
                du, ddelta, dA, dD, dz, dy, hChunks, T, u, delta, A, dbc, R, D, z, zOff, zStride, B,
                L, ED, N, P, chunks, e0, dBC, hs, as, sg, gs, dAacc);
          }
        });
    for (float[] dBC : dBCs) {
      for (int row = 0; row < B * L; row++) {
        for (int j = 0; j < 2 * N; j++) {
          ddbc[row * P + R + j] += dBC[row * 2 * N + j];
        }
      }
    }
  }

  private static void backwardBlock(
      float[] du,
      float[] ddelta,
      float[] dA,
      float[] dD,
      float[] dz,
      float[] dy,
      float[] hChunks,
      int T,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N,
      int P,
      int chunks,
      int e0,
      float[] dBC,
      float[] hs,
      float[] as,
      float[] sg,
      float[] gs,
      float[] dAacc) {
    var m = S.indexInRange(e0, ED);
    int lanes = Math.min(VL, ED - e0);
    FloatVector dSkip = FloatVector.fromArray(S, D, e0, m);
    FloatVector dDacc = FloatVector.zero(S);
    java.util.Arrays.fill(dAacc, 0f);
    for (int b = 0; b < B; b++) {
      java.util.Arrays.fill(gs, 0f);
      for (int c = chunks - 1; c >= 0; c--) {
        int t0 = c * T, t1 = Math.min(L, t0 + T);
        int base = (b * chunks + c) * N * ED + e0;
        for (int n = 0; n < N; n++) {
          FloatVector.fromArray(S, hChunks, base + n * ED, m).intoArray(hs, n * VL);
        }
        int first = b * L + t0;
        VectorMath.expOfProducts(as, 0, delta, first * ED + e0, ED, t1 - t0, A, e0, ED, N, lanes);
        VectorMath.sigmoids(sg, 0, z, first * zStride + zOff + e0, zStride, t1 - t0, lanes);
        for (int t = t0; t < t1; t++) { // recompute the chunk's states
          int row = b * L + t, k = t - t0, bOff = row * P + R;
          FloatVector dt = FloatVector.fromArray(S, delta, row * ED + e0, m);
          FloatVector dtx = dt.mul(FloatVector.fromArray(S, u, row * ED + e0, m));
          for (int n = 0; n < N; n++) {
            FloatVector a = FloatVector.fromArray(S, as, (k * N + n) * VL);
            FloatVector h =
                FloatVector.fromArray(S, hs, (k * N + n) * VL).fma(a, dtx.mul(dbc[bOff + n]));
            h.intoArray(hs, ((k + 1) * N + n) * VL);
          }
        }
        for (int t = t1 - 1; t >= t0; t--) {
          int row = b * L + t, k = t - t0, bOff = row * P + R, cOff = bOff + N, ro = row * ED + e0;
          int zo = row * zStride + zOff + e0;
          FloatVector dt = FloatVector.fromArray(S, delta, ro, m);
          FloatVector x = FloatVector.fromArray(S, u, ro, m);
          FloatVector zz = FloatVector.fromArray(S, z, zo, m);
          FloatVector sig = FloatVector.fromArray(S, sg, k * VL);
          FloatVector gate = zz.mul(sig);
          FloatVector siluGrad = sig.mul(zz.mul(sig.neg().add(1f)).add(1f));
          FloatVector s = dSkip.mul(x);
          for (int n = 0; n < N; n++) {
            s = FloatVector.fromArray(S, hs, ((k + 1) * N + n) * VL).mul(dbc[cOff + n]).add(s);
          }
          FloatVector dyt = FloatVector.fromArray(S, dy, ro, m);
          FloatVector.fromArray(S, dz, zo, m).add(dyt.mul(s).mul(siluGrad)).intoArray(dz, zo, m);
          FloatVector ds = dyt.mul(gate);
          dDacc = ds.fma(x, dDacc);
          FloatVector dut = ds.mul(dSkip);
          FloatVector ddt = FloatVector.zero(S);
          FloatVector dtx = dt.mul(x);
          int bc = row * 2 * N;
          for (int n = 0; n < N; n++) {
            FloatVector hn = FloatVector.fromArray(S, hs, ((k + 1) * N + n) * VL);
            FloatVector hp = FloatVector.fromArray(S, hs, (k * N + n) * VL);
            FloatVector an = FloatVector.fromArray(S, as, (k * N + n) * VL);
            FloatVector An = FloatVector.fromArray(S, A, n * ED + e0, m);
            float Bn = dbc[bOff + n], Cn = dbc[cOff + n];
            dBC[bc + N + n] += ds.mul(hn).reduceLanes(VectorOperators.ADD); // dC
            FloatVector Gn = FloatVector.fromArray(S, gs, n * VL).add(ds.mul(Cn));
            FloatVector hpa = hp.mul(an);
            FloatVector.fromArray(S, dAacc, n * VL)
                .add(Gn.mul(hpa).mul(dt))
                .intoArray(dAacc, n * VL);
            ddt = Gn.mul(hpa.mul(An).add(x.mul(Bn))).add(ddt);
            dBC[bc + n] += Gn.mul(dtx).reduceLanes(VectorOperators.ADD); // dB
            dut = Gn.mul(dt).mul(Bn).add(dut);
            Gn.mul(an).intoArray(gs, n * VL);
          }
          FloatVector.fromArray(S, ddelta, ro, m).add(ddt).intoArray(ddelta, ro, m);
          FloatVector.fromArray(S, du, ro, m).add(dut).intoArray(du, ro, m);
        }
      }
    }
    for (int n = 0; n < N; n++) {
      FloatVector.fromArray(S, dA, n * ED + e0, m)
          .add(FloatVector.fromArray(S, dAacc, n * VL))
          .intoArray(dA, n * ED + e0, m);
    }
    FloatVector.fromArray(S, dD, e0, m).add(dDacc).intoArray(dD, e0, m);
  }

  /** {@link SelectiveScan#saveChunkStates} vectorized across channels. */
  static void saveChunkStates(
      float[] hChunks,
      int T,
      float[] h0,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      int B,
      int L,
      int ED,
      int N) {
    int P = R + 2 * N, chunks = SelectiveScan.chunkCount(L, T), blocks = (ED + VL - 1) / VL;
    Parallel.forRange(
        B * blocks,
        1,
        (from, to) -> {
          float[] h = new float[N * VL], as = new float[Math.min(L, RUN) * N * VL];
          for (int job = from; job < to; job++) {
            int b = job / blocks, e0 = (job - b * blocks) * VL, lanes = Math.min(VL, ED - e0);
            var m = S.indexInRange(e0, ED);
            for (int n = 0; n < N; n++) {
              (h0 == null
                      ? FloatVector.zero(S)
                      : FloatVector.fromArray(S, h0, (b * N + n) * ED + e0, m))
                  .intoArray(h, n * VL);
            }
            for (int t = 0; t < L; t++) {
              if (t % RUN == 0) {
                int first = b * L + t, steps = Math.min(RUN, L - t);
                VectorMath.expOfProducts(
                    as, 0, delta, first * ED + e0, ED, steps, A, e0, ED, N, lanes);
              }
              if (t % T == 0) {
                int base = (b * chunks + t / T) * N * ED + e0;
                for (int n = 0; n < N; n++) {
                  FloatVector.fromArray(S, h, n * VL).intoArray(hChunks, base + n * ED, m);
                }
              }
              int row = b * L + t, bOff = row * P + R;
              FloatVector dtx =
                  FloatVector.fromArray(S, delta, row * ED + e0, m)
                      .mul(FloatVector.fromArray(S, u, row * ED + e0, m));
              int k = t % RUN;
              for (int n = 0; n < N; n++) {
                FloatVector a = FloatVector.fromArray(S, as, (k * N + n) * VL);
                FloatVector.fromArray(S, h, n * VL)
                    .fma(a, dtx.mul(dbc[bOff + n]))
                    .intoArray(h, n * VL);
              }
            }
          }
        });
  }
}
