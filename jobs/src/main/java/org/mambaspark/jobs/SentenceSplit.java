package org.mambaspark.jobs;

import com.johnsnowlabs.nlp.DocumentAssembler;
import com.johnsnowlabs.nlp.annotators.sbd.pragmatic.SentenceDetector;
import java.util.Arrays;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.mambaspark.spark.MambaSettings;

/**
 * score's {@code --split sentences}: Spark NLP's DocumentAssembler and rule-based SentenceDetector
 * (no pretrained model, nothing downloaded) add a {@code sentence} annotation column, which the
 * Mamba step explodes into one row per sentence. Spark NLP is not in the submitted jar: on a
 * cluster, pass it with {@code --packages} (see the README).
 */
final class SentenceSplit {
  static final String SENTENCE = "sentence";
  private static final String DOCUMENT = "__mamba_document";

  private SentenceSplit() {}

  static Dataset<Row> apply(Dataset<Row> in, MambaSettings s) {
    if (!s.split.equals("sentences")) {
      throw new IllegalArgumentException("--split takes 'sentences' (or 'none'), got " + s.split);
    }
    if (!Arrays.asList(in.columns()).contains(s.textCol)) {
      throw new IllegalArgumentException(
          "--split sentences needs a text column '"
              + s.textCol
              + "'; the input has "
              + Arrays.toString(in.columns()));
    }
    if (Arrays.asList(in.columns()).contains(SENTENCE)) {
      throw new IllegalArgumentException(
          "--split sentences adds a column 'sentence': the input has one already");
    }
    try {
      Class.forName("com.johnsnowlabs.nlp.DocumentAssembler");
    } catch (ClassNotFoundException e) {
      throw new IllegalArgumentException(
          "--split sentences needs Spark NLP on the classpath: spark-submit --packages"
              + " com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3 (see the README for the"
              + " --exclude-packages it needs)",
          e);
    }
    return WithSparkNlp.split(in, s.textCol);
  }

  /** Loaded only once Spark NLP is known to be there. */
  private static final class WithSparkNlp {
    static Dataset<Row> split(Dataset<Row> in, String textCol) {
      DocumentAssembler document = new DocumentAssembler();
      document.setInputCol(textCol);
      document.setOutputCol(DOCUMENT);
      SentenceDetector sentences = new SentenceDetector();
      sentences.setInputCols(new String[] {DOCUMENT});
      sentences.setOutputCol(SENTENCE);
      Pipeline p = new Pipeline().setStages(new PipelineStage[] {document, sentences});
      return p.fit(in).transform(in).drop(DOCUMENT);
    }
  }
}
