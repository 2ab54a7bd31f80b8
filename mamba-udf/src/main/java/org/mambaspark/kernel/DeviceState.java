package org.mambaspark.kernel;

import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaState;

/**
 * The recurrent state on the device: the layout of the kernel's {@code state} array, per layer the
 * scan state h (B, N, ED), or Mamba-2's (B, H, P, N), then the conv's kept inputs (B, C, K−1) of
 * its C channels, and which {@link MambaState} it holds. A state's newest values stay on the device
 * after a call (a decode step would otherwise move the whole state both ways, 90 MB at B = 32 for
 * mamba-130m); they come back when the host reads the state ({@link MambaState#toHost}) or before
 * the buffer serves another. The two kernel programs of one model (the whole model's and the decode
 * step's) pair their states ({@link #pair}): a state one holds goes to the other through their host
 * arrays (a get from one, a copy, a put into the other), not through the state's own. The owner
 * calls every method under its device lock.
 */
final class DeviceState {
  private final KernelMemory kernel;
  private final MambaConfig c;
  private final MambaState.Holder holder;
  private MambaState resident;

  /** The other program's state of the same model ({@link #pair}), or null. */
  private DeviceState sibling;

  DeviceState(KernelMemory kernel, MambaConfig c, MambaState.Holder holder) {
    this.kernel = kernel;
    this.c = c;
    this.holder = holder;
  }

  /** Floats one layer's state takes for B sequences. */
  int layerSize(int B) {
    return B * c.stateSize * c.intermediateSize + B * c.convChannels() * (c.convKernel - 1);
  }

  int ssmOff(int l, int B) {
    return l * layerSize(B);
  }

  int convOff(int l, int B) {
    return l * layerSize(B) + B * c.stateSize * c.intermediateSize;
  }

  /** a and b, two programs' states of one model, move a state between them device to device. */
  static void pair(DeviceState a, DeviceState b) {
    a.sibling = b;
    b.sibling = a;
  }

  /** Makes {@code s} the device's state for a call: uploaded unless it is already there. */
  void upload(MambaState s) {
    if (resident == s && s.holder() == holder) {
      return;
    }
    evict();
    int B = s.batch;
    int need = layerSize(B) * c.numLayers;
    if (kernel.state.length < need) {
      kernel.state =
          KernelMemory.residentFloats(need, "the recurrent state of " + B + " sequences");
    }
    DeviceState o = sibling;
    if (o != null && o.resident == s && s.holder() == o.holder) {
      // the paired program's buffer holds the newest values; from here on only this one has them
      o.kernel.get(o.kernel.state);
      System.arraycopy(o.kernel.state, 0, kernel.state, 0, need);
      o.resident = null;
      kernel.put(kernel.state);
      hold(s);
      return;
    }
    for (int l = 0; l < c.numLayers; l++) {
      float[] ssm = s.ssm(l);
      float[] conv = s.conv(l);
      System.arraycopy(ssm, 0, kernel.state, ssmOff(l, B), ssm.length);
      System.arraycopy(conv, 0, kernel.state, convOff(l, B), conv.length);
    }
    kernel.put(kernel.state);
  }

  /** After a successful call: the device holds the newest values of {@code s}. */
  void hold(MambaState s) {
    resident = s;
    s.heldBy(holder);
  }

  /** Brings {@code s}'s values back to its host arrays ({@link MambaState.Holder#download}). */
  void download(MambaState s) {
    if (s.holder() != holder) {
      return; // brought home meanwhile (another thread's call needed the buffer)
    }
    if (resident != s) {
      throw new IllegalStateException(
          "the GPU no longer holds this state: it was not brought back before its buffer was"
              + " reused");
    }
    kernel.get(kernel.state);
    for (int l = 0; l < c.numLayers; l++) {
      float[] ssm = s.hostSsm(l);
      float[] conv = s.hostConv(l);
      System.arraycopy(kernel.state, ssmOff(l, s.batch), ssm, 0, ssm.length);
      System.arraycopy(kernel.state, convOff(l, s.batch), conv, 0, conv.length);
    }
    resident = null;
    s.heldBy(null);
  }

  /**
   * A state held by another device comes back first (outside this device's lock); one the paired
   * program holds stays there for {@link #upload}.
   */
  void fromOtherDevice(MambaState s) {
    MambaState.Holder h = s == null ? null : s.holder();
    if (h != null && h != holder && (sibling == null || h != sibling.holder)) {
      s.toHost();
    }
  }

  /** The state this device holds goes back to its host arrays before the buffer is reused. */
  void evict() {
    MambaState r = resident;
    if (r != null && r.holder() == holder) {
      r.toHost();
    }
    resident = null;
  }

  /**
   * A call that failed may have advanced some layers of the state and not others. A state uploaded
   * for the call still has its values from before it on the host; one the device held has no other
   * copy: reading it afterwards says so instead of returning a mixed state.
   */
  RuntimeException lost(MambaState s, RuntimeException e) {
    if (s != null && s.holder() == holder) {
      s.heldBy(
          x -> {
            throw new IllegalStateException(
                "this state was lost: a GPU call failed while updating it (" + e + ")", e);
          });
      if (resident == s) {
        resident = null;
      }
    }
    return e;
  }
}
