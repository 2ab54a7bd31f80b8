package org.mambaspark.spark;

import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import scala.collection.JavaConverters;

/**
 * A Spark ML stage that scores, embeds or continues the documents of a column: a string column, a
 * Spark NLP annotation column ({@code document}, {@code sentence}: one output row per annotation,
 * so {@code DocumentAssembler → SentenceDetector → MambaTransformer} is one Pipeline), or an array
 * of token ids. Appends the columns of {@link MambaDatasets} ({@code outputCol} renames the main
 * one: loss, embedding or generated_text). Saves and loads with its Params ({@link
 * DefaultParamsWritable}); the model itself stays where {@code modelPath} points.
 *
 * <p>Params left unset fall back to the session's {@code spark.mamba.*} settings, then to the
 * defaults.
 */
public final class MambaTransformer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final Param<String> modelPath;
  private final Param<String> task;
  private final Param<String> inputCol;
  private final Param<String> outputCol;
  private final IntParam batchSize;
  private final IntParam batchTokens;
  private final IntParam pieceLength;
  private final Param<String> pooling;
  private final BooleanParam logprobs;
  private final IntParam maxNewTokens;
  private final DoubleParam temperature;
  private final LongParam seed;
  private final Param<String> weightsDtype;

  public MambaTransformer() {
    this(Identifiable$.MODULE$.randomUID("mamba"));
  }

  public MambaTransformer(String uid) {
    this.uid = uid; // before the Params, which take their parent's uid
    modelPath = new Param<>(this, "modelPath", "model directory on any Hadoop path");
    task = new Param<>(this, "task", "score, embed or generate");
    inputCol =
        new Param<>(
            this, "inputCol", "input column: string, Spark NLP annotations, or array of token ids");
    outputCol =
        new Param<>(
            this,
            "outputCol",
            "name of the main output column (empty: loss, embedding, generated_text)");
    batchSize = new IntParam(this, "batchSize", "at most this many documents in one forward");
    batchTokens = new IntParam(this, "batchTokens", "at most this many positions in one forward");
    pieceLength =
        new IntParam(this, "pieceLength", "longer documents run in pieces, the state carried");
    pooling = new Param<>(this, "pooling", "embed: mean or last");
    logprobs = new BooleanParam(this, "logprobs", "score: add per-token log-probabilities");
    maxNewTokens = new IntParam(this, "maxNewTokens", "generate: at most this many new tokens");
    temperature = new DoubleParam(this, "temperature", "generate: 0 = greedy");
    seed = new LongParam(this, "seed", "generate: sampling seed");
    weightsDtype =
        new Param<>(this, "weightsDtype", "the big matrices in memory: fp32, bf16 or int8");
    setDefault(modelPath, "");
    setDefault(task, "score");
    setDefault(inputCol, "text");
    setDefault(outputCol, "");
    setDefault(batchSize, Integer.parseInt(MambaSettings.BATCH_SIZE.defaultValue()));
    setDefault(batchTokens, Integer.parseInt(MambaSettings.BATCH_TOKENS.defaultValue()));
    setDefault(pieceLength, Integer.parseInt(MambaSettings.PIECE_LENGTH.defaultValue()));
    setDefault(pooling, MambaSettings.POOLING.defaultValue());
    setDefault(logprobs, false);
    setDefault(maxNewTokens, Integer.parseInt(MambaSettings.MAX_NEW_TOKENS.defaultValue()));
    setDefault(temperature, 0.0);
    setDefault(seed, 0L);
    setDefault(weightsDtype, MambaSettings.WEIGHTS_DTYPE.defaultValue());
  }

  @Override
  public String uid() {
    return uid;
  }

  // Params are public no-arg methods (Spark finds them by reflection).

  public Param<String> modelPath() {
    return modelPath;
  }

  public Param<String> task() {
    return task;
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public IntParam batchSize() {
    return batchSize;
  }

  public IntParam batchTokens() {
    return batchTokens;
  }

  public IntParam pieceLength() {
    return pieceLength;
  }

  public Param<String> pooling() {
    return pooling;
  }

  public BooleanParam logprobs() {
    return logprobs;
  }

  public IntParam maxNewTokens() {
    return maxNewTokens;
  }

  public DoubleParam temperature() {
    return temperature;
  }

  public LongParam seed() {
    return seed;
  }

  public Param<String> weightsDtype() {
    return weightsDtype;
  }

  public MambaTransformer setModelPath(String v) {
    set(modelPath, v);
    return this;
  }

  public MambaTransformer setTask(String v) {
    Task.of(v);
    set(task, v);
    return this;
  }

  public MambaTransformer setInputCol(String v) {
    set(inputCol, v);
    return this;
  }

  public MambaTransformer setOutputCol(String v) {
    set(outputCol, v);
    return this;
  }

  public MambaTransformer setBatchSize(int v) {
    set(batchSize, v);
    return this;
  }

  public MambaTransformer setBatchTokens(int v) {
    set(batchTokens, v);
    return this;
  }

  public MambaTransformer setPieceLength(int v) {
    set(pieceLength, v);
    return this;
  }

  public MambaTransformer setPooling(String v) {
    set(pooling, v);
    return this;
  }

  public MambaTransformer setLogprobs(boolean v) {
    set(logprobs, v);
    return this;
  }

  public MambaTransformer setMaxNewTokens(int v) {
    set(maxNewTokens, v);
    return this;
  }

  public MambaTransformer setTemperature(double v) {
    set(temperature, v);
    return this;
  }

  public MambaTransformer setSeed(long v) {
    set(seed, v);
    return this;
  }

  /** fp32 (default), bf16 or int8: the format the model's big matrices are held in. */
  public MambaTransformer setWeightsDtype(String v) {
    set(weightsDtype, v);
    return this;
  }

  public String getModelPath() {
    return $(modelPath);
  }

  public String getTask() {
    return $(task);
  }

  public String getInputCol() {
    return $(inputCol);
  }

  public String getOutputCol() {
    return $(outputCol);
  }

  public int getBatchSize() {
    return (Integer) $(batchSize);
  }

  /**
   * The settings: the session's spark.mamba.* (may be empty), with the Params set on this stage on
   * top.
   */
  MambaSettings settings(Map<String, String> sessionConf) {
    Map<String, String> m = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : sessionConf.entrySet()) {
      if (e.getKey().startsWith(MambaSettings.PREFIX)) {
        m.put(e.getKey(), e.getValue());
      }
    }
    if (isSet(modelPath) || !m.containsKey(MambaSettings.MODEL.key())) {
      if (!$(modelPath).isEmpty()) {
        m.put(MambaSettings.MODEL.key(), $(modelPath));
      }
    }
    put(m, MambaSettings.BATCH_SIZE, batchSize);
    put(m, MambaSettings.BATCH_TOKENS, batchTokens);
    put(m, MambaSettings.PIECE_LENGTH, pieceLength);
    put(m, MambaSettings.POOLING, pooling);
    put(m, MambaSettings.LOGPROBS, logprobs);
    put(m, MambaSettings.MAX_NEW_TOKENS, maxNewTokens);
    put(m, MambaSettings.TEMPERATURE, temperature);
    put(m, MambaSettings.SEED, seed);
    put(m, MambaSettings.WEIGHTS_DTYPE, weightsDtype);
    // one input column, whatever its type: the plan looks at the schema
    m.put(MambaSettings.TEXT_COL.key(), $(inputCol));
    m.put(MambaSettings.IDS_COL.key(), $(inputCol));
    return MambaSettings.of(m);
  }

  /** A Param set on this stage wins; a default only fills in for a missing session setting. */
  private void put(Map<String, String> m, MambaSettings.Key k, Param<?> p) {
    if (isSet(p) || !m.containsKey(k.key())) {
      m.put(k.key(), String.valueOf($(p)));
    }
  }

  private String mainCol() {
    String o = $(outputCol);
    return o.isEmpty() ? null : o;
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    Dataset<Row> in = dataset.toDF();
    Map<String, String> conf = JavaConverters.mapAsJavaMap(in.sparkSession().conf().getAll());
    MambaSettings s = settings(conf);
    Task t = Task.of($(task));
    MambaMetrics metrics = MambaMetrics.register(in.sparkSession().sparkContext(), t);
    return MambaDatasets.apply(in, t, s, mainCol(), metrics);
  }

  @Override
  public StructType transformSchema(StructType schema) {
    Map<String, String> conf =
        SparkSession.getActiveSession().isDefined()
            ? JavaConverters.mapAsJavaMap(SparkSession.getActiveSession().get().conf().getAll())
            : Map.of();
    return MambaDatasets.plan(schema, Task.of($(task)), settings(conf), mainCol()).outputSchema();
  }

  @Override
  public MambaTransformer copy(ParamMap extra) {
    return (MambaTransformer) defaultCopy(extra);
  }

  public static MLReader<MambaTransformer> read() {
    return new DefaultParamsReader<>();
  }

  public static MambaTransformer load(String path) {
    return read().load(path);
  }
}
