package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.mambaspark.model.MambaConfig;

/**
 * Which passes {@link DecodePlan} makes of a step (host side only, no device): the products' kinds
 * and k parts for a 132-unit GPU, and where a split product's sum goes.
 */
class DecodePlanTest {
  static final int UNITS = 132;

  static MambaConfig mamba130m() {
    return MambaConfig.builder()
        .vocabSize(50280)
        .hiddenSize(768)
        .intermediateSize(1536)
        .stateSize(16)
        .timeStepRank(48)
        .convKernel(4)
        .numLayers(24)
        .build();
  }

  /** Each pass as "kind" or, for split products and the passes that may sum them, "kind:parts". */
  static List<String> passes(MambaConfig c, int B) {
    DeviceWeights wl =
        DeviceWeights.place(c, DeviceWeights.Format.FP32, DeviceWeights.ARRAY_FLOATS);
    Layout a = new Layout(c, new Layout.Tilings(c.stateSize, 48 * 1024, UNITS), B, 1, false);
    int[] zero = new int[c.numLayers];
    DecodePlan plan = new DecodePlan(c, wl, a, zero, zero, a.ids);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < plan.passes; i++) {
      int r = i * StepKernel.REC;
      int kind = plan.records[r];
      String s = Integer.toString(kind);
      if (kind == StepKernel.P_GEMM || kind == StepKernel.P_GEMM_SUM) {
        s += ":" + plan.records[r + 14];
      } else if (kind == StepKernel.P_RMSNORM) {
        s += ":" + plan.records[r + 6];
      } else if (kind == StepKernel.P_CONV) {
        s += ":" + plan.records[r + 10];
      }
      out.add(s);
    }
    return out;
  }

  @Test
  void atSixtyFourRowsInAndOutProjSplitAndTheNextPassesSumThem() {
    List<String> p = passes(mamba130m(), 64);
    String norm = StepKernel.P_RMSNORM + ":";
    String gemm = StepKernel.P_GEMM + ":";
    String conv = StepKernel.P_CONV + ":";
    // embed; per layer: norm (+ the previous out_proj's 11 parts), in_proj in 2 parts (48 column
    // tiles), the conv step summing them, x_proj GEMV, scan, out_proj in 11 parts; the final norm
    // sums the last; lm_head whole
    assertEquals(1 + 24 * 6 + 2, p.size(), p.toString());
    assertEquals(norm + "0", p.get(1));
    for (int l = 0; l < 24; l++) {
      int at = 1 + 6 * l;
      List<String> layer = p.subList(at, at + 6);
      assertEquals(
          List.of(
              norm + (l == 0 ? 0 : 11),
              gemm + 2,
              conv + 2,
              "" + StepKernel.P_GEMV,
              "" + StepKernel.P_SCAN_DT,
              gemm + 11),
          layer,
          "layer " + l);
    }
    assertEquals(List.of(norm + 11, gemm + 1), p.subList(p.size() - 2, p.size()));
  }

  @Test
  void atSixteenRowsOutProjStaysAGemv() {
    List<String> p = passes(mamba130m(), 16);
    assertEquals(1 + 24 * 6 + 2, p.size(), p.toString());
    assertEquals(StepKernel.P_CONV + ":2", p.get(3));
    assertEquals("" + StepKernel.P_GEMV, p.get(6));
    assertEquals(0, p.stream().filter(s -> s.startsWith(StepKernel.P_GEMM_SUM + ":")).count());
  }

  @Test
  void aSplitProductNoPassCanSumGetsASummingPass() {
    // in_proj (1200 × 160: ten k-steps, 19 column tiles) in five parts, summed by the conv step
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(1033)
            .hiddenSize(160)
            .intermediateSize(600)
            .stateSize(5)
            .timeStepRank(3)
            .convKernel(3)
            .numLayers(2)
            .build();
    List<String> p = passes(c, 64);
    assertEquals(
        List.of(StepKernel.P_RMSNORM + ":0", StepKernel.P_GEMM + ":5", StepKernel.P_CONV + ":5"),
        p.subList(1, 4),
        p.toString());
    // lm_head (1033 × 160, 17 tiles) ends the step in five parts and their sum pass
    assertEquals(
        List.of(StepKernel.P_GEMM + ":5", StepKernel.P_GEMM_SUM + ":5"),
        p.subList(p.size() - 2, p.size()));
  }
}
