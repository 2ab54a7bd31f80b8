package org.mambaspark.spark;

import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.mambaspark.batch.Doc;

/**
 * {@code mamba_embed(text)}: {@code array<float>}, the pooled final hidden state ({@code
 * spark.mamba.pooling}, mean by default) of the text under {@code spark.mamba.model}; null for a
 * row that cannot be embedded (null or empty text). For PySpark: {@code
 * spark.udf.registerJavaFunction("mamba_embed", "org.mambaspark.spark.MambaEmbedUdf",
 * "array<float>")}.
 */
public final class MambaEmbedUdf implements UDF1<String, float[]> {
  private static final long serialVersionUID = 1L;

  public static final String RETURN_TYPE_DDL = "array<float>";
  public static final DataType RETURN_TYPE = DataTypes.createArrayType(DataTypes.FloatType, false);

  private final UdfSupport support;

  /** With the active session's {@code spark.mamba.*} settings (what registerJavaFunction calls). */
  public MambaEmbedUdf() {
    this(UdfSupport.ofActiveSession());
  }

  MambaEmbedUdf(UdfSupport support) {
    this.support = support;
  }

  @Override
  public float[] call(String text) {
    Doc d = support.run(Task.EMBED, text);
    return d.ok() ? d.embedding : null;
  }
}
