package org.mambaspark.jobs;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The loss curve of a training run as a PNG (JFreeChart, headless AWT): train loss per step as a
 * line, eval loss as points, read from the metrics.jsonl lines the job writes.
 */
public final class LossChart {
  private LossChart() {}

  /**
   * Writes the chart of these metrics lines ({@code "step"}, {@code "loss"}, optional {@code
   * "eval_loss"}) to png.
   */
  public static void write(List<String> metricsLines, String title, Path png) throws IOException {
    System.setProperty("java.awt.headless", "true");
    XYSeries train = new XYSeries("train loss (per step)");
    XYSeries eval = new XYSeries("eval loss (held out)");
    for (String line : metricsLines) {
      Double step = number(line, "step");
      if (step == null) {
        continue;
      }
      Double loss = number(line, "loss");
      boolean skipped = line.contains("\"skipped\":true");
      if (loss != null && !skipped && Double.isFinite(loss)) {
        train.add(step + 1, loss);
      }
      Double e = number(line, "eval_loss");
      if (e != null && Double.isFinite(e)) {
        eval.add(step + 1, e);
      }
    }
    XYSeriesCollection data = new XYSeriesCollection();
    data.addSeries(train);
    data.addSeries(eval);
    NumberAxis x = new NumberAxis("step");
    NumberAxis y = new NumberAxis("loss (nats per token)");
    y.setAutoRangeIncludesZero(false);
    XYLineAndShapeRenderer r = new XYLineAndShapeRenderer();
    r.setSeriesLinesVisible(0, true);
    r.setSeriesShapesVisible(0, false);
    r.setSeriesPaint(0, new Color(0x1f, 0x77, 0xb4));
    r.setSeriesStroke(0, new BasicStroke(1.2f));
    r.setSeriesLinesVisible(1, true);
    r.setSeriesShapesVisible(1, true);
    r.setSeriesPaint(1, new Color(0xd6, 0x27, 0x28));
    XYPlot plot = new XYPlot(data, x, y, r);
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
    chart.setBackgroundPaint(Color.WHITE);
    ChartUtils.saveChartAsPNG(png.toFile(), chart, 900, 540);
  }

  /** The number after "key": in a flat JSON object line, or null. */
  static Double number(String line, String key) {
    String k = "\"" + key + "\":";
    int i = line.indexOf(k);
    if (i < 0) {
      return null;
    }
    i += k.length();
    int j = i;
    while (j < line.length() && ",}".indexOf(line.charAt(j)) < 0) {
      j++;
    }
    String v = line.substring(i, j).trim();
    if (v.equals("null")) {
      return null;
    }
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      return null;
    }
  }
}
