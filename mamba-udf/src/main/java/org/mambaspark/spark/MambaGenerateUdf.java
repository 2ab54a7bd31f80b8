package org.mambaspark.spark;

import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;

/**
 * {@code mamba_generate(text, max_tokens)}: {@code string}, the continuation of the text (greedy
 * unless {@code spark.mamba.temperature} says otherwise; a final stop token not included); null for
 * a row that cannot be continued. A null max_tokens means {@code spark.mamba.maxNewTokens}. For
 * PySpark: {@code spark.udf.registerJavaFunction("mamba_generate",
 * "org.mambaspark.spark.MambaGenerateUdf", "string")}.
 */
public final class MambaGenerateUdf implements UDF2<String, Integer, String> {
  private static final long serialVersionUID = 1L;

  public static final String RETURN_TYPE_DDL = "string";
  public static final DataType RETURN_TYPE = DataTypes.StringType;

  private final UdfSupport support;

  /** With the active session's {@code spark.mamba.*} settings (what registerJavaFunction calls). */
  public MambaGenerateUdf() {
    this(UdfSupport.ofActiveSession());
  }

  MambaGenerateUdf(UdfSupport support) {
    this.support = support;
  }

  @Override
  public String call(String text, Integer maxTokens) {
    Doc d = support.doc(text);
    if (!d.ok()) {
      return null;
    }
    DocumentRunner r = support.runner();
    int max = maxTokens == null ? support.settings.maxNewTokens : maxTokens;
    if (max < 0) {
      return null;
    }
    r.generate(java.util.List.of(d), max);
    if (!d.ok()) {
      return null;
    }
    return support.model().tokenizer.decode(d.generated, 0, r.textLength(d.generated));
  }
}
