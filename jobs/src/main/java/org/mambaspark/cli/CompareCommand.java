package org.mambaspark.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba compare}: how far two checkpoints of one configuration are apart, per tensor and
 * over all parameters (relative error ‖a − b‖ / ‖b‖), e.g. a multi-executor training run against a
 * single-process one. Exits 1 when the overall error exceeds {@code --tolerance}.
 */
@Command(
    name = "compare",
    mixinStandardHelpOptions = true,
    description =
        "Relative error between the parameters of two checkpoints (same configuration), per tensor and"
            + " overall; exit status 1 above --tolerance.")
final class CompareCommand implements Callable<Integer> {
  @Option(names = "--a", required = true, description = "checkpoint directory")
  Path a;

  @Option(names = "--b", required = true, description = "the reference checkpoint directory")
  Path b;

  @Option(
      names = "--tolerance",
      defaultValue = "1e-5",
      description = "largest overall relative error accepted (default ${DEFAULT-VALUE})")
  double tolerance;

  @Override
  public Integer call() {
    MambaWeights wa = Checkpoint.load(a);
    MambaWeights wb = Checkpoint.load(b);
    if (!wa.config.equals(wb.config)) {
      throw new IllegalArgumentException(
          "the checkpoints have different configurations: " + wa.config + " vs " + wb.config);
    }
    List<NamedTensor> ta = wa.parameters();
    List<NamedTensor> tb = wb.parameters();
    double diff = 0;
    double ref = 0;
    double worst = 0;
    String worstName = "";
    for (int i = 0; i < ta.size(); i++) {
      double d = 0;
      double r = 0;
      float[] x = ta.get(i).data;
      float[] y = tb.get(i).data;
      for (int j = 0; j < x.length; j++) {
        double e = (double) x[j] - y[j];
        d += e * e;
        r += (double) y[j] * y[j];
      }
      double rel = Math.sqrt(d / Math.max(r, 1e-300));
      if (rel > worst) {
        worst = rel;
        worstName = ta.get(i).name;
      }
      diff += d;
      ref += r;
    }
    double overall = Math.sqrt(diff / Math.max(ref, 1e-300));
    System.out.printf(
        Locale.ROOT,
        "%s vs %s: overall rel err %.3e; largest per tensor %.3e (%s); tolerance %.1e%n",
        a,
        b,
        overall,
        worst,
        worstName,
        tolerance);
    return overall <= tolerance ? 0 : 1;
  }
}
