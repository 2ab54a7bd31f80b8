package org.mambaspark.model;

import java.util.Locale;

/**
 * The members of the Mamba family this engine runs. They share the residual block (pre-norm
 * RMSNorm, residual add), the embedding, the final norm and the head; each has its own {@link
 * Mixer}.
 */
public enum Architecture {
  /** Mamba-1 (Gu &amp; Dao 2023): the selective scan, Δ of rank R. */
  MAMBA("mamba", "MambaForCausalLM", "mamba"),
  /** Mamba-2 (Dao &amp; Gu 2024): the state-space dual, one scalar A per head, a gated RMSNorm. */
  MAMBA2("mamba2", "Mamba2ForCausalLM", "mamba2"),
  /** Falcon-Mamba: Mamba-1 with weightless RMSNorms on Δ's input, B and C. */
  FALCON_MAMBA("falcon_mamba", "FalconMambaForCausalLM", "falcon-mamba");

  /** {@code config.json}'s {@code model_type}. */
  public final String modelType;

  /** {@code config.json}'s {@code architectures[0]}: the transformers class that loads it. */
  public final String hfClass;

  /** The name on the command line ({@code bin/mamba init --arch}). */
  public final String cliName;

  Architecture(String modelType, String hfClass, String cliName) {
    this.modelType = modelType;
    this.hfClass = hfClass;
    this.cliName = cliName;
  }

  /** The mixer that computes this architecture's layers, for config c. */
  Mixer mixer(MambaConfig c) {
    return this == MAMBA2 ? new SsdMixer(c) : new SelectiveMixer(c);
  }

  /** By {@code model_type}, or null. */
  public static Architecture ofModelType(String modelType) {
    for (Architecture a : values()) {
      if (a.modelType.equals(modelType)) {
        return a;
      }
    }
    return null;
  }

  /** By transformers class name, or null. */
  public static Architecture ofHfClass(String hfClass) {
    for (Architecture a : values()) {
      if (a.hfClass.equals(hfClass)) {
        return a;
      }
    }
    return null;
  }

  /** By command-line name ({@code mamba}, {@code mamba2}, {@code falcon-mamba}). */
  public static Architecture ofCliName(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT);
    for (Architecture a : values()) {
      if (a.cliName.equals(n)) {
        return a;
      }
    }
    throw new IllegalArgumentException(
        "unknown architecture '" + name + "' (known: mamba, mamba2, falcon-mamba)");
  }
}
