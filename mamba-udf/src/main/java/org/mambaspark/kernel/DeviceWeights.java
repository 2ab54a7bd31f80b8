package org.mambaspark.kernel;

import java.util.Arrays;
import java.util.Locale;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.LayerWeights;
import org.mambaspark.model.Mamba2LayerWeights;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;

/**
 * Where a model's parameters live on the device, and their upload.
 *
 * <p>Two placements, one set of kernels:
 *
 * <ul>
 *   <li><b>resident</b> (fp32, at most one device array of parameters: models up to about 500M
 *       parameters): every parameter in {@link MambaKernel#W}, at the offsets below, which the
 *       gradient array G shares (training runs only in this placement);
 *   <li><b>staged</b> (larger models, or 16-bit storage): the matrices (in_proj, x_proj, dt_proj,
 *       out_proj of each layer; embedding; an untied lm_head) in up to {@link MambaKernel#SLABS}
 *       int slabs of under 2 GiB each, as fp32 bits or bf16 pairs; the small parameters (norms,
 *       conv, biases, A, D) in W with a stage area into which {@code OP_STAGE} decodes one layer's
 *       matrices (or a block of lm_head's rows) just before they are used. Staging reads a layer's
 *       matrices once and writes them as fp32: next to a forward's GEMMs it is ~0.2% of the time; a
 *       decode step pays about three times its weight bytes in memory traffic.
 * </ul>
 *
 * <p>The offsets ({@link #norm}, {@link #inProj} ...) are W offsets where each parameter is read;
 * in the staged placement every layer's matrices share the stage area's offsets.
 *
 * <p>Mamba-2 is placed resident only: per layer norm, in_proj (I, D) and its bias, the conv (C, K)
 * and its bias, dt_bias ({@link #dtProjBias}, H), A = −exp(A_log) ({@link #a2}, H), D ({@link
 * #dSkip}, H), the gated norm's weight ({@link #gatedNorm}, ED), out_proj and its bias; it has no
 * x_proj or dt_proj (their offsets are −1).
 */
final class DeviceWeights {
  /** How a placement stores the matrices. */
  enum Format {
    FP32,
    BF16;

    /** {@code fp32} or {@code bf16} (case-insensitive), e.g. from {@code --weights-dtype}. */
    static Format parse(String s) {
      switch (s.toLowerCase(Locale.ROOT)) {
        case "fp32":
        case "f32":
        case "float32":
          return FP32;
        case "bf16":
        case "bfloat16":
          return BF16;
        default:
          throw new IllegalArgumentException("weights dtype must be fp32 or bf16, got '" + s + "'");
      }
    }
  }

  /** Floats one device array holds (2 GiB less a margin: Aparapi leaves OpenCL beyond it). */
  static final long ARRAY_FLOATS = (1L << 29) - 16;

  final MambaConfig c;
  final Format format;
  final boolean staged;

  /** Floats one device array may hold here. */
  final long arrayFloats;

  final int[] norm;
  final int[] inProj;
  final int[] inProjBias;
  final int[] convW;
  final int[] convB;
  final int[] xProj;
  final int[] dtProj;
  final int[] dtProjBias;
  final int[] a2;
  final int[] dSkip;
  final int[] outProj;
  final int[] outProjBias;
  final int[] gatedNorm;
  final int normF;

  /** Resident: the embedding's and lm_head's W offsets; staged: their slab element offsets. */
  final long emb;

  final long lmHead;

  /** W floats. */
  final long wTotal;

  // staged placement
  final int pow2; //         W: the decode table (256)
  final int stage; //        W: the stage area
  final int stageFloats;
  final int layerFloats; //  a layer's matrices: in_proj | x_proj | dt_proj | out_proj
  final int[] layerSlab;
  final long[] layerAt; //   element offset of the layer's matrices in its slab
  final int embSlab;
  final int lmHeadSlab;
  final long[] slabElems; // elements each slab holds

  /**
   * The placement for this device: resident if possible and asked for, else staged.
   *
   * @param arrayFloats the floats one device array may hold ({@link #ARRAY_FLOATS}; tests lower it
   *     to place small models as large ones are placed)
   */
  static DeviceWeights place(MambaConfig c, Format format, long arrayFloats) {
    boolean fits = format == Format.FP32 && parameters(c) <= arrayFloats;
    if (!fits && c.architecture == Architecture.MAMBA2) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "the GPU runs Mamba-2 with its parameters resident as fp32 in one device array (%,d"
                  + " floats); this model has %,d parameters%s: run it on the CPU backend"
                  + " (-Dmamba.backend=cpu)",
              arrayFloats,
              parameters(c),
              format == Format.FP32 ? "" : " and bf16 weights were asked for"));
    }
    return new DeviceWeights(c, format, !fits, arrayFloats);
  }

  private DeviceWeights(MambaConfig c, Format format, boolean staged, long arrayFloats) {
    this.c = c;
    this.format = format;
    this.staged = staged;
    this.arrayFloats = arrayFloats;
    int nl = c.numLayers;
    norm = new int[nl];
    inProj = new int[nl];
    inProjBias = new int[nl];
    convW = new int[nl];
    convB = new int[nl];
    xProj = new int[nl];
    dtProj = new int[nl];
    dtProjBias = new int[nl];
    a2 = new int[nl];
    dSkip = new int[nl];
    outProj = new int[nl];
    outProjBias = new int[nl];
    gatedNorm = new int[nl];
    Arrays.fill(gatedNorm, -1);
    layerSlab = new int[nl];
    layerAt = new long[nl];
    long D = c.hiddenSize;
    long ED = c.intermediateSize;
    long N = c.stateSize;
    long R = c.timeStepRank;
    long K = c.convKernel;
    long P = c.xProjSize();
    long V = c.vocabSize;
    long lf = layerMatrices(c);
    layerFloats = at(lf);
    long o = c.architecture == Architecture.MAMBA2 ? placeMamba2Layers() : 0;
    for (int l = 0; l < nl && c.architecture != Architecture.MAMBA2; l++) {
      norm[l] = at(o);
      o += D;
      inProjBias[l] = c.useBias ? at(o) : -1;
      o += c.useBias ? 2 * ED : 0;
      convW[l] = at(o);
      o += ED * K;
      convB[l] = c.useConvBias ? at(o) : -1;
      o += c.useConvBias ? ED : 0;
      dtProjBias[l] = at(o);
      o += ED;
      a2[l] = at(o);
      o += N * ED;
      dSkip[l] = at(o);
      o += ED;
      outProjBias[l] = c.useBias ? at(o) : -1;
      o += c.useBias ? D : 0;
      if (!staged) {
        inProj[l] = at(o);
        o += 2 * ED * D;
        xProj[l] = at(o);
        o += P * ED;
        dtProj[l] = at(o);
        o += ED * R;
        outProj[l] = at(o);
        o += D * ED;
      }
    }
    normF = at(o);
    o += D;
    if (!staged) {
      emb = o;
      o += V * D;
      lmHead = c.tieWordEmbeddings ? emb : o;
      o += c.tieWordEmbeddings ? 0 : V * D;
      pow2 = -1;
      stage = -1;
      stageFloats = 0;
      embSlab = -1;
      lmHeadSlab = -1;
      slabElems = new long[0];
      wTotal = o;
      return;
    }
    pow2 = at(o);
    o += 256;
    stage = at(o);
    // the stage area: a layer's matrices, and lm_head in blocks of rows of at least that size
    long room = arrayFloats - o;
    if (room < lf) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "one layer's matrices (%,d floats) and the small parameters (%,d floats) exceed one"
                  + " device array (%,d floats)",
              lf,
              o,
              arrayFloats));
    }
    stageFloats = at(Math.min(room, Math.max(lf, V * D)));
    o += stageFloats;
    wTotal = o;
    for (int l = 0; l < nl; l++) {
      long s = stage;
      inProj[l] = at(s);
      s += 2 * ED * D;
      xProj[l] = at(s);
      s += P * ED;
      dtProj[l] = at(s);
      s += ED * R;
      outProj[l] = at(s);
    }
    // the slabs, filled in order; no matrix straddles two
    long cap = format == Format.BF16 ? 2 * arrayFloats : arrayFloats;
    long[] used = new long[MambaKernel.SLABS];
    int slab = 0;
    long[] place = new long[2];
    for (int l = 0; l < nl; l++) {
      slab = fit(used, slab, lf, cap, place);
      layerSlab[l] = (int) place[0];
      layerAt[l] = place[1];
    }
    slab = fit(used, slab, V * D, cap, place);
    embSlab = (int) place[0];
    emb = place[1];
    if (c.tieWordEmbeddings) {
      lmHeadSlab = embSlab;
      lmHead = emb;
    } else {
      fit(used, slab, V * D, cap, place);
      lmHeadSlab = (int) place[0];
      lmHead = place[1];
    }
    slabElems = used;
  }

  /** Mamba-2's layers, resident (see the class comment); returns the W floats they take. */
  private long placeMamba2Layers() {
    long D = c.hiddenSize;
    long ED = c.intermediateSize;
    long H = c.numHeads;
    long C = c.convChannels();
    long I = c.inProjSize();
    long K = c.convKernel;
    long o = 0;
    for (int l = 0; l < c.numLayers; l++) {
      norm[l] = at(o);
      o += D;
      inProj[l] = at(o);
      o += I * D;
      inProjBias[l] = c.useBias ? at(o) : -1;
      o += c.useBias ? I : 0;
      convW[l] = at(o);
      o += C * K;
      convB[l] = c.useConvBias ? at(o) : -1;
      o += c.useConvBias ? C : 0;
      dtProjBias[l] = at(o);
      o += H;
      a2[l] = at(o);
      o += H;
      dSkip[l] = at(o);
      o += H;
      gatedNorm[l] = at(o);
      o += ED;
      outProj[l] = at(o);
      o += D * ED;
      outProjBias[l] = c.useBias ? at(o) : -1;
      o += c.useBias ? D : 0;
      xProj[l] = -1;
      dtProj[l] = -1;
    }
    return o;
  }

  /** Places n elements in slab s or a later one; place = {slab, offset}; returns the slab. */
  private int fit(long[] used, int s, long n, long cap, long[] place) {
    if (n > cap) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "a matrix of %,d elements exceeds one device array (%,d %s elements)",
              n,
              cap,
              format.name().toLowerCase(Locale.ROOT)));
    }
    int k = s;
    while (k < used.length && used[k] + n > cap) {
      k++;
    }
    if (k == used.length) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "the %s matrices need more than %d device arrays of %,d bytes (%,d bytes in all)%s",
              format.name().toLowerCase(Locale.ROOT),
              MambaKernel.SLABS,
              4 * arrayFloats,
              matrixBytes(),
              format == Format.FP32 ? ": use bf16 weights (--weights-dtype bf16)" : ""));
    }
    place[0] = k;
    place[1] = used[k];
    used[k] += (n + 1) & ~1L; // even offsets: a bf16 pair never spans two matrices
    return k;
  }

  /** The model's parameter count (the floats of the resident placement). */
  static long parameters(MambaConfig c) {
    if (c.architecture == Architecture.MAMBA2) {
      return c.parameterCount();
    }
    long D = c.hiddenSize;
    long ED = c.intermediateSize;
    long K = c.convKernel;
    long small =
        D
            + (c.useBias ? 2 * ED + D : 0)
            + ED * K
            + (c.useConvBias ? ED : 0)
            + ED
            + c.stateSize * ED
            + ED;
    return c.numLayers * (small + layerMatrices(c))
        + D
        + (long) c.vocabSize * D * (c.tieWordEmbeddings ? 1 : 2);
  }

  /** A layer's matrix elements: in_proj, x_proj, dt_proj, out_proj. */
  static long layerMatrices(MambaConfig c) {
    long D = c.hiddenSize;
    long ED = c.intermediateSize;
    if (c.architecture == Architecture.MAMBA2) {
      return (long) c.inProjSize() * D + D * ED;
    }
    return 2 * ED * D + c.xProjSize() * ED + ED * c.timeStepRank + D * ED;
  }

  /** Bytes of the matrices in this placement's format. */
  long matrixBytes() {
    long n =
        c.numLayers * layerMatrices(c)
            + (long) c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
    return n * (format == Format.BF16 ? 2 : 4);
  }

  /**
   * Bytes of the matrices a decode step reads once each: every layer's, and lm_head (the embedding
   * gives only the step's rows).
   */
  long stepMatrixBytes() {
    long n = c.numLayers * layerMatrices(c) + (long) c.vocabSize * c.hiddenSize;
    return n * (format == Format.BF16 ? 2 : 4);
  }

  /** Device bytes of the parameters: W and the slabs. */
  long deviceBytes() {
    long b = 4 * wTotal;
    for (long e : slabElems) {
      b += format == Format.BF16 ? 2 * ((e + 1) / 2 * 2) : 4 * e;
    }
    return b;
  }

  /**
   * Refuses a placement whose parameters would not leave a tenth of the device's memory for a
   * call's activations, before anything is allocated or uploaded.
   */
  void checkFits(long deviceMemBytes, String device) {
    long need = deviceBytes();
    if (need > deviceMemBytes - deviceMemBytes / 10) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "the weights need %,d bytes on the device (%s), and %s has %,d bytes (a tenth of"
                  + " them kept for activations)%s",
              need,
              format.name().toLowerCase(Locale.ROOT),
              device,
              deviceMemBytes,
              format == Format.FP32 ? ": try bf16 weights (--weights-dtype bf16)" : ""));
    }
  }

  /** Ints slab s holds (at least 1: Aparapi wants a non-empty array for every field). */
  int slabInts(int s) {
    if (s >= slabElems.length) {
      return 1;
    }
    long e = slabElems[s];
    return (int) Math.max(1, format == Format.BF16 ? (e + 1) / 2 : e);
  }

  private static int at(long o) {
    if (o > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("offset " + o + " exceeds a Java array");
    }
    return (int) o;
  }

  // ---- packing (host side)

  /**
   * Fills W (and the slabs) from the model's weights. A's slot holds A·log2(e) = -exp(A_log)ᵀ·log2
   * e (N, ED): the scan's exp2 form.
   *
   * @throws IllegalArgumentException a parameter that is not finite, named
   */
  void pack(float[] W, int[][] slabs, MambaWeights w) {
    if (c.architecture == Architecture.MAMBA2) {
      packMamba2(W, w);
      return;
    }
    int ED = c.intermediateSize;
    int N = c.stateSize;
    for (int l = 0; l < c.numLayers; l++) {
      LayerWeights lw = w.layers[l];
      put(W, norm[l], lw.norm);
      put(W, inProjBias[l], lw.inProjBias);
      put(W, convW[l], lw.conv1dWeight);
      put(W, convB[l], lw.conv1dBias);
      put(W, dtProjBias[l], lw.dtProjBias);
      int o = a2[l];
      for (int e = 0; e < ED; e++) {
        for (int n = 0; n < N; n++) {
          W[o + n * ED + e] = (float) (-Math.exp(lw.aLog[e * N + n]) * ScanKernel.LOG2E);
        }
      }
      put(W, dSkip[l], lw.dSkip);
      put(W, outProjBias[l], lw.outProjBias);
      if (!staged) {
        put(W, inProj[l], lw.inProj);
        put(W, xProj[l], lw.xProj);
        put(W, dtProj[l], lw.dtProj);
        put(W, outProj[l], lw.outProj);
      } else {
        int[] s = slabs[layerSlab[l]];
        long at = layerAt[l];
        at = encode(s, at, lw.inProj, l, "in_proj");
        at = encode(s, at, lw.xProj, l, "x_proj");
        at = encode(s, at, lw.dtProj, l, "dt_proj");
        encode(s, at, lw.outProj, l, "out_proj");
      }
    }
    put(W, normF, w.normF);
    if (!staged) {
      put(W, (int) emb, w.embeddings);
      if (!c.tieWordEmbeddings) {
        put(W, (int) lmHead, w.lmHead);
      }
      return;
    }
    for (int e = 0; e < 256; e++) {
      W[pow2 + e] = (float) Math.scalb(1.0, Math.max(e, 1) - 150);
    }
    encode(slabs[embSlab], emb, w.embeddings, -1, "embeddings");
    if (!c.tieWordEmbeddings) {
      encode(slabs[lmHeadSlab], lmHead, w.lmHead, -1, "lm_head");
    }
  }

  private void packMamba2(float[] W, MambaWeights w) {
    for (int l = 0; l < c.numLayers; l++) {
      Mamba2LayerWeights lw = w.mamba2Layers[l];
      put(W, norm[l], lw.norm);
      put(W, inProj[l], lw.inProj);
      put(W, inProjBias[l], lw.inProjBias);
      put(W, convW[l], lw.conv1dWeight);
      put(W, convB[l], lw.conv1dBias);
      put(W, dtProjBias[l], lw.dtBias);
      for (int h = 0; h < c.numHeads; h++) {
        W[a2[l] + h] = (float) -Math.exp(lw.aLog[h]);
      }
      put(W, dSkip[l], lw.dSkip);
      put(W, gatedNorm[l], lw.normWeight);
      put(W, outProj[l], lw.outProj);
      put(W, outProjBias[l], lw.outProjBias);
    }
    put(W, normF, w.normF);
    put(W, (int) emb, w.embeddings);
    if (!c.tieWordEmbeddings) {
      put(W, (int) lmHead, w.lmHead);
    }
  }

  private static void put(float[] W, int off, float[] src) {
    if (src != null) {
      System.arraycopy(src, 0, W, off, src.length);
    }
  }

  /** Writes src at element offset at of slab s in this format; returns the next offset. */
  private long encode(int[] s, long at, float[] src, int layer, String name) {
    for (int i = 0; i < src.length; i++) {
      float f = src[i];
      if (!Float.isFinite(f)) {
        throw new IllegalArgumentException(
            (layer >= 0 ? "backbone.layers." + layer + ".mixer." : "")
                + name
                + " holds a non-finite value ("
                + f
                + ") at element "
                + i);
      }
      int bits = Float.floatToRawIntBits(f);
      long e = at + i;
      if (format == Format.FP32) {
        s[(int) e] = bits;
      } else {
        int h = SafetensorsFile.floatToBf16(f) & 0xFFFF;
        int word = (int) (e >> 1);
        s[word] = (e & 1) == 0 ? (s[word] & 0xFFFF0000) | h : (s[word] & 0xFFFF) | (h << 16);
      }
    }
    return at + src.length;
  }
}
