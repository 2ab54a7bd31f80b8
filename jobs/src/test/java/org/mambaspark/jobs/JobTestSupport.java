package org.mambaspark.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.tokenizer.ByteTokenizer;
import org.mambaspark.tokenizer.Tokenizers;

/** Models, corpora and the engine's reference numbers for the job tests. */
final class JobTestSupport {
  static final ObjectMapper JSON = new ObjectMapper();

  private JobTestSupport() {}

  /** A small byte-level model (V=256, D=32, 2 layers) with fixed random weights. */
  static Path writeModel(Path dir) throws IOException {
    Files.createDirectories(dir);
    MambaConfig c =
        MambaConfig.builder().vocabSize(256).hiddenSize(32).stateSize(8).numLayers(2).build();
    Checkpoint.save(Initialization.initialize(c, 11), dir);
    Tokenizers.writeByteTokenizerMarker(dir);
    return dir;
  }

  static double engineLoss(MambaModel m, int[] ids) {
    return Scoring.meanNextTokenLoss(m, new Workspace(m.config), ids, 1, ids.length);
  }

  static double engineLoss(MambaModel m, String text) {
    return engineLoss(m, ByteTokenizer.INSTANCE.encode(text));
  }

  /** Writes JSON lines (each map one line, or a raw line when given as a byte[]). */
  static Path jsonLines(Path file, List<?> rows) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (Object r : rows) {
      if (r instanceof byte[] raw) {
        b.write(raw);
      } else {
        b.write(JSON.writeValueAsBytes(r));
      }
      b.write('\n');
    }
    Files.createDirectories(file.getParent());
    Files.write(file, b.toByteArray());
    return file;
  }

  /** Every line of the part files of a JSON-lines output directory, parsed. */
  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> readJsonOutput(Path dir) throws IOException {
    List<Map<String, Object>> rows = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.sorted().toList()) {
        if (!f.getFileName().toString().startsWith("part-")) {
          continue;
        }
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isBlank()) {
            rows.add(JSON.readValue(line, Map.class));
          }
        }
      }
    }
    return rows;
  }
}
