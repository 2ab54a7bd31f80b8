package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;

/**
 * The README's default model (models/pycode-bytes, trained by TrainJob) on the README's sample
 * (data/sample.jsonl: CPython code from files it never trained on) scores well below the unigram
 * byte entropy of its training corpus: it generalises, unlike a memorising model.
 */
class DefaultModelTest {
  static final Path MODEL = Path.of("..", "models", "pycode-bytes");
  static final Path SAMPLE = Path.of("..", "data", "sample.jsonl");

  /** Unigram byte entropy of the training corpus, nats (models/pycode-bytes/README.md). */
  static final double UNIGRAM = 3.151;

  @Test
  void theDefaultModelGeneralisesToTheHeldOutSample() throws Exception {
    MambaModel model = new MambaModel(Checkpoint.load(MODEL));
    Tokenizer tok = Tokenizers.forModel(MODEL).orElseThrow();
    double sum = 0;
    long tokens = 0;
    int docs = 0;
    try (ModelRunner cpu = Backends.cpu().open(model)) {
      for (String line : Files.readAllLines(SAMPLE, StandardCharsets.UTF_8)) {
        JsonNode row = JobTestSupport.JSON.readTree(line);
        int[] ids = tok.encode(row.get("text").asText());
        sum += cpu.nextTokenLossSum(null, ids, 1, ids.length);
        tokens += ids.length - 1;
        docs++;
      }
    }
    double mean = sum / tokens;
    System.out.printf(
        "default model on %d held-out documents (%d bytes predicted): %.4f nats/byte (unigram"
            + " entropy of its training corpus %.3f)%n",
        docs, tokens, mean, UNIGRAM);
    assertEquals(40, docs);
    assertTrue(mean < UNIGRAM - 1.0, mean + " nats/byte");
  }
}
