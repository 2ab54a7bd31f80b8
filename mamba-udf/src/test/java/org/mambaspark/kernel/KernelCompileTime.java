package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.model.ClassModel;
import com.aparapi.internal.writer.KernelWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * How long the OpenCL compiler takes over the model's kernel program: the time from a fresh {@link
 * MambaKernel} to the end of its first launch (a one-element fill), which is Aparapi's code
 * generation, the program's build and, on PoCL, the work-group function it builds at the first
 * launch of a local size. Run it with an empty compiler cache, or it times a cache hit:
 *
 * <pre>
 * POCL_CACHE_DIR=$(mktemp -d) java -cp ... org.mambaspark.kernel.KernelCompileTime [local size]
 * java -cp ... org.mambaspark.kernel.KernelCompileTime --source kernel.cl
 * </pre>
 *
 * The second form writes the generated OpenCL source, without a device, to time or cut down apart
 * from Java. CPU OpenCL devices (PoCL) are admitted.
 */
public final class KernelCompileTime {
  private KernelCompileTime() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 2 && args[0].equals("--source")) {
      String cl =
          KernelWriter.writeToString(
              ClassModel.createClassModel(MambaKernel.class)
                  .getEntrypoint("run", new MambaKernel()));
      Files.writeString(Path.of(args[1]), cl, StandardCharsets.UTF_8);
      System.out.printf(Locale.ROOT, "%d lines of OpenCL in %s%n", cl.lines().count(), args[1]);
      return;
    }
    int local = args.length > 0 ? Integer.parseInt(args[0]) : 256;
    List<OpenCLDevice> devices = OpenClDevices.usable(true);
    if (devices.isEmpty()) {
      System.err.println("no OpenCL device: " + OpenClDevices.describeAll());
      System.exit(2);
    }
    OpenCLDevice device = devices.get(0);
    MambaKernel k = new MambaKernel();
    k.setExplicit(true);
    k.op = MambaKernel.OP_FILL;
    k.eN = 1;
    k.eDstSel = MambaKernel.SEL_ACT;
    k.eDstOff = 0;
    k.put(k.act);
    long t0 = System.nanoTime();
    k.execute(Range.create(device, local, local));
    long t1 = System.nanoTime();
    boolean cl = k.isRunningCL();
    k.dispose();
    System.out.printf(
        Locale.ROOT,
        "%s: generate + build + first launch (local size %d) %.1f s%s%n",
        OpenClDevices.describe(device),
        local,
        (t1 - t0) * 1e-9,
        cl ? "" : " — NOT on OpenCL (Aparapi fell back to Java)");
    System.exit(cl ? 0 : 1);
  }
}
