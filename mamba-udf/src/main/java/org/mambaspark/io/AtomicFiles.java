package org.mambaspark.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Write-then-rename: the content goes to a hidden temporary file in the target's own directory
 * (same file system, so the rename is atomic), is flushed to disk, and only then replaces the
 * target. A reader sees the old file or the complete new one, never a torn one, and a crash
 * mid-write leaves the old file intact.
 */
final class AtomicFiles {
  private static final Logger LOG = LoggerFactory.getLogger(AtomicFiles.class);

  /** Writes the body of a file into an open channel, positioned at 0. */
  interface Body {
    void writeTo(FileChannel channel) throws IOException;
  }

  private AtomicFiles() {}

  static void write(Path target, Body body) {
    Path abs = target.toAbsolutePath();
    Path dir = abs.getParent();
    Path tmp =
        dir.resolve(
            "."
                + abs.getFileName()
                + "."
                + Long.toHexString(ThreadLocalRandom.current().nextLong())
                + ".tmp");
    boolean moved = false;
    try {
      Files.createDirectories(dir);
      // CREATE_NEW, not createTempFile: the result gets the umask's permissions, not 0600.
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        body.writeTo(ch);
        ch.force(true);
      }
      try {
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        LOG.warn("{}: file system cannot rename atomically; replacing non-atomically", abs);
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
      }
      moved = true;
      syncDirectory(dir);
    } catch (IOException e) {
      throw new CheckpointException(abs, "cannot write: " + e, e);
    } finally {
      if (!moved) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException e) {
          LOG.warn("{}: cannot delete temporary file {}: {}", abs, tmp, e.toString());
        }
      }
    }
  }

  static void write(Path target, byte[] content) {
    write(target, ch -> writeFully(ch, ByteBuffer.wrap(content)));
  }

  static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  /**
   * Makes the rename itself durable where the platform allows fsync on a directory (Linux does;
   * Windows not).
   */
  private static void syncDirectory(Path dir) {
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      LOG.debug("{}: directory fsync not available: {}", dir, e.toString());
    }
  }
}
