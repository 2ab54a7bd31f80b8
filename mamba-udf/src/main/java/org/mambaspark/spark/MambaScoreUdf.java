package org.mambaspark.spark;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.mambaspark.batch.Doc;

/**
 * {@code mamba_score(text)}: {@code struct<loss double, perplexity double, tokens int, error
 * string>} — the mean next-token cross-entropy of the text under the model in {@code
 * spark.mamba.model}. For PySpark:
 *
 * <pre>
 * spark.conf.set("spark.mamba.model", "hdfs:///models/mamba-130m")
 * spark.udf.registerJavaFunction("mamba_score", "org.mambaspark.spark.MambaScoreUdf",
 *     "struct&lt;loss:double,perplexity:double,tokens:int,error:string&gt;")
 * </pre>
 */
public final class MambaScoreUdf implements UDF1<String, Row> {
  private static final long serialVersionUID = 1L;

  /** The return type, as PySpark's registerJavaFunction takes it. */
  public static final String RETURN_TYPE_DDL =
      "struct<loss:double,perplexity:double,tokens:int,error:string>";

  public static final DataType RETURN_TYPE =
      DataTypes.createStructType(
          new org.apache.spark.sql.types.StructField[] {
            DataTypes.createStructField("loss", DataTypes.DoubleType, true),
            DataTypes.createStructField("perplexity", DataTypes.DoubleType, true),
            DataTypes.createStructField("tokens", DataTypes.IntegerType, true),
            DataTypes.createStructField("error", DataTypes.StringType, true)
          });

  private final UdfSupport support;

  /** With the active session's {@code spark.mamba.*} settings (what registerJavaFunction calls). */
  public MambaScoreUdf() {
    this(UdfSupport.ofActiveSession());
  }

  MambaScoreUdf(UdfSupport support) {
    this.support = support;
  }

  @Override
  public Row call(String text) {
    Doc d = support.run(Task.SCORE, text);
    Integer tokens = d.ids == null ? null : d.tokens();
    return d.ok()
        ? RowFactory.create(d.loss, Math.exp(d.loss), tokens, null)
        : RowFactory.create(null, null, tokens, d.error);
  }

  static StructType returnType() {
    return (StructType) RETURN_TYPE;
  }
}
