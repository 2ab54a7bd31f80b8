package org.mambaspark.ops;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.helpers.NOPLoggerFactory;

/**
 * A fallback that must never be silent (scalar loops instead of the Vector API, the CPU instead of
 * the GPU): logged at WARN, and also written to standard error when no SLF4J provider is bound (the
 * NOP logger would swallow it, as on the trimmed GPU classpath).
 */
public final class LoudWarning {
  private LoudWarning() {}

  public static void warn(Logger log, String message) {
    log.warn(message);
    if (LoggerFactory.getILoggerFactory() instanceof NOPLoggerFactory) {
      System.err.println("WARN " + log.getName() + ": " + message);
    }
  }
}
