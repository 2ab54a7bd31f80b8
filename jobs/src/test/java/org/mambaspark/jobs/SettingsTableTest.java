package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.mambaspark.ops.WeightMatrix;
import org.mambaspark.spark.MambaSettings;
import picocli.CommandLine;

/**
 * The configuration table of docs/jobs.md lists every spark.mamba.* key with its flag and default,
 * and each flag parses to its key.
 */
class SettingsTableTest {
  @Test
  void readmeDocumentsEveryKeyWithItsFlagAndDefault() throws Exception {
    String readme = Files.readString(Path.of("..", "docs", "jobs.md"), StandardCharsets.UTF_8);
    for (MambaSettings.Key k : MambaSettings.KEYS) {
      String def = k.defaultValue().isEmpty() ? "" : "`" + k.defaultValue() + "`";
      String row = "| `" + k.key() + "` | `" + k.flag() + "` | " + def + " |";
      assertTrue(readme.contains(row), "docs/jobs.md lacks the row: " + row);
    }
  }

  @Test
  void flagsSetTheirKeysAndBadValuesSayWhich() {
    ScoreJob job = new ScoreJob();
    new CommandLine(job)
        .parseArgs(
            "--model",
            "m",
            "--batch-size",
            "8",
            "--piece-length",
            "64",
            "--logprobs",
            "--conf",
            "spark.mamba.pooling=last",
            "--conf",
            "spark.executor.cores=2");
    assertEquals("8", job.job.settings().get(MambaSettings.BATCH_SIZE.key()));
    assertEquals("true", job.score.settings().get(MambaSettings.LOGPROBS.key()));
    assertEquals("last", job.job.settings().get(MambaSettings.POOLING.key()));
    assertEquals("2", job.job.sparkConf.get("spark.executor.cores"));
    MambaSettings s = MambaSettings.of(job.job.settings());
    assertEquals(8, s.batchSize);
    assertEquals(64, s.pieceLength);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> MambaSettings.of("batchSize", "zero"));
    assertEquals(
        "spark.mamba.batchSize (--batch-size) must be an integer >= 1, got 'zero'", e.getMessage());
    new CommandLine(job).parseArgs("--model", "m", "--weights-dtype", "int8");
    assertEquals(WeightMatrix.Dtype.INT8, MambaSettings.of(job.job.settings()).weightsDtype);
    e =
        assertThrows(
            IllegalArgumentException.class, () -> MambaSettings.of("weightsDtype", "fp16"));
    assertEquals(
        "spark.mamba.weightsDtype (--weights-dtype) must be fp32, bf16 or int8, got 'fp16'",
        e.getMessage());
  }
}
