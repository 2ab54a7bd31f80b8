package org.mambaspark.model;

import java.util.HashMap;
import java.util.Map;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.WeightMatrix;

/**
 * The forward of a Mamba-family language model ({@code MambaForCausalLM}, {@code
 * Mamba2ForCausalLM}, {@code FalconMambaForCausalLM}; HF transformers' torch paths) over a batch of
 * B sequences of L tokens, in fp32 arithmetic; the big matrices may be held in bf16 or int8 ({@link
 * WeightMatrix}). Immutable and thread-safe: per-call buffers live in a {@link Workspace},
 * recurrent state in a {@link MambaState}.
 *
 * <pre>
 *   x = embeddings[ids]                                                (B, L, D)
 *   per layer:  x = x + mixer(rms(x) · norm)        (the architecture's {@link Mixer})
 *   hidden = rms(x) · norm_f;  logits = hidden @ lm_headᵀ               (B, L, V)
 * </pre>
 */
public final class MambaModel {
  public final MambaConfig config;

  /**
   * Read on every forward, never cached in derived form: an optimizer updates them in place between
   * calls. In a model of 16- or 8-bit weights, the matrices the forward reads are the model's own
   * copies, and these arrays may be empty ({@link #holdsFp32Matrices}).
   */
  public final MambaWeights weights;

  /**
   * The format of the big matrices the forward reads (embedding, lm_head, in_proj, x_proj,
   * out_proj); the other parameters are always fp32.
   */
  public final WeightMatrix.Dtype weightsDtype;

  /** The architecture's mixer, bound to the config. */
  final Mixer mixer;

  private final WeightMatrix embedding; // (V, D)
  private final WeightMatrix head; //      (V, D), the embedding itself when tied
  private final BlockMatrices[] matrices;
  private final boolean holdsFp32;

  /** An fp32 model: the forward reads the weights' own arrays. */
  public MambaModel(MambaWeights weights) {
    this(weights, WeightMatrix.Dtype.FP32, Map.of());
  }

  /**
   * A model whose forward reads the big matrices in {@code dtype}, converted from the weights' fp32
   * arrays, which stay as they are (a GPU backend uploads those in its own format). To hold only
   * the converted copies, load with {@code Checkpoint.loadModel}.
   */
  public MambaModel(MambaWeights weights, WeightMatrix.Dtype dtype) {
    this(weights, dtype, Map.of());
  }

  /**
   * @param converted matrices already in {@code dtype}, by checkpoint name: those the weights hold
   *     empty ({@link MambaWeights#withoutMatrices}); the others are converted here
   */
  public MambaModel(
      MambaWeights weights, WeightMatrix.Dtype dtype, Map<String, WeightMatrix> converted) {
    this.weights = weights;
    this.config = weights.config;
    this.weightsDtype = dtype;
    this.mixer = config.architecture.mixer(config);
    Map<String, WeightMatrix> byName = new HashMap<>();
    boolean fp32 = true;
    for (NamedTensor p : weights.parameters()) {
      if (!MambaWeights.isMatrix(p.name)) {
        continue;
      }
      int rows = (int) p.shape[0], cols = (int) (p.numel() / p.shape[0]);
      WeightMatrix w = converted.get(p.name);
      if (w == null) {
        if (p.data.length != p.numel()) {
          throw new IllegalArgumentException(p.name + " is neither in the weights nor converted");
        }
        w = WeightMatrix.of(p.data, rows, cols, dtype);
      } else {
        if (w.dtype != dtype || w.rows != rows || w.cols != cols) {
          throw new IllegalArgumentException(
              p.name
                  + " is "
                  + w
                  + ", expected "
                  + dtype.label()
                  + " ("
                  + rows
                  + ", "
                  + cols
                  + ")");
        }
        fp32 = false;
      }
      byName.put(p.name, w);
    }
    this.holdsFp32 = fp32;
    this.embedding = byName.get(MambaWeights.EMBEDDINGS);
    this.head = config.tieWordEmbeddings ? embedding : byName.get(MambaWeights.LM_HEAD);
    this.matrices = new BlockMatrices[config.numLayers];
    for (int i = 0; i < matrices.length; i++) {
      String mx = "backbone.layers." + i + ".mixer.";
      matrices[i] =
          new BlockMatrices(
              byName.get(mx + "in_proj.weight"),
              byName.get(mx + "x_proj.weight"),
              byName.get(mx + "out_proj.weight"));
    }
  }

  /**
   * Whether {@link #weights} holds every matrix in fp32 (training, checkpoint writing and the GPU
   * upload need that); false for a model loaded in a 16- or 8-bit format.
   */
  public boolean holdsFp32Matrices() {
    return holdsFp32;
  }

  /** Bytes of the matrices the forward reads (a tied head counted once). */
  public long matrixBytes() {
    long n = embedding.bytes() + (head == embedding ? 0 : head.bytes());
    for (BlockMatrices m : matrices) {
      n += m.inProj.bytes() + m.outProj.bytes() + (m.xProj == null ? 0 : m.xProj.bytes());
    }
    return n;
  }

  /**
   * Runs the backbone; afterwards {@code ws.hidden} holds the output of norm_f (B·L, D).
   *
   * @param ids (B, L) token ids
   * @param state carried in and updated (streaming, generation), or null for fresh sequences
   * @param hiddenStates when non-null, (numLayers+1) arrays of (B·L, D) receive the residual stream
   *     after each layer and, last, the norm_f output (HF's output_hidden_states without the
   *     embedding output)
   */
  public void forward(
      Workspace ws, int[] ids, int B, int L, MambaState state, float[][] hiddenStates) {
    MambaConfig c = config;
    int BT = B * L, D = c.hiddenSize;
    if (ids.length < BT) {
      throw new IllegalArgumentException(
          "ids holds " + ids.length + " tokens, expected B*L = " + BT);
    }
    if (state != null && state.batch != B) {
      throw new IllegalArgumentException(
          "state is for batch " + state.batch + ", the input has batch " + B);
    }
    ws.ensure(B, L);
    float[] x = ws.x;
    embeddingForward(x, ids, BT);
    for (int l = 0; l < c.numLayers; l++) {
      BlockWeights w = weights.blocks[l];
      LayerBuffers a = ws.layer(l);
      if (a.xIn != null) {
        System.arraycopy(x, 0, a.xIn, 0, BT * D);
      }
      RmsNorm.rmsnormForward(a.xNorm, a.rstd, x, w.norm, BT, D, c.layerNormEpsilon);
      float[] convState = state == null ? null : state.conv(l);
      float[] ssmState = state == null ? null : state.ssm(l);
      mixer.forward(ws.out, a.xNorm, w, matrices[l], a.mixer, convState, ssmState, B, L);
      addInPlace(x, ws.out, BT * D);
      if (hiddenStates != null) {
        System.arraycopy(x, 0, hiddenStates[l], 0, BT * D);
      }
    }
    RmsNorm.rmsnormForward(ws.hidden, ws.rstdF, x, weights.normF, BT, D, c.layerNormEpsilon);
    if (hiddenStates != null) {
      System.arraycopy(ws.hidden, 0, hiddenStates[c.numLayers], 0, BT * D);
    }
  }

  /** logits (rows, V) = hidden[rowOff..rowOff+rows) (·, D) @ lm_headᵀ. */
  public void lmHeadForward(float[] logits, float[] hidden, int rowOff, int rows) {
    int D = config.hiddenSize;
    lmHeadForward(logits, 0, hidden, rowOff * D, D, rows);
  }

  /**
   * logits[logitsOff + r·V + v] = Σ_d hidden[hiddenOff + r·hiddenStride + d] · lm_head[v, d], r <
   * rows: one pass over lm_head for all the rows (the last position of each sequence, in decoding).
   */
  public void lmHeadForward(
      float[] logits, int logitsOff, float[] hidden, int hiddenOff, int hiddenStride, int rows) {
    Matmul.matmulForward(
        logits, logitsOff, config.vocabSize, hidden, hiddenOff, hiddenStride, head, null, rows);
  }

  void embeddingForward(float[] x, int[] ids, int BT) {
    int D = config.hiddenSize, V = config.vocabSize;
    for (int t = 0; t < BT; t++) {
      int id = ids[t];
      String why = TokenIds.outside(id, t, V);
      if (why != null) {
        throw new IllegalArgumentException(why);
      }
      embedding.decode(id, 0, D, x, t * D);
    }
  }

  private static void addInPlace(float[] x, float[] dx, int n) {
    Parallel.forRange(
        n,
        1 << 14,
        (from, to) -> {
          for (int i = from; i < to; i++) {
            x[i] += dx[i];
          }
        });
  }
}
