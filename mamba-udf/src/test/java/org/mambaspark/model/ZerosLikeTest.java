package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@link MambaWeights#zerosLike}, whose arrays are allocated on the engine's threads for a large
 * model: every parameter of the model's name and shape, zeros in fresh arrays of their own (a tied
 * head the embedding), for every architecture, small models and large ones.
 */
class ZerosLikeTest {
  @Test
  void freshZerosOfTheSameShape() {
    List<MambaConfig> configs = new ArrayList<>(InitializationTest.configs());
    for (MambaConfig small : InitializationTest.configs()) { // over a million floats
      configs.add(small.toBuilder().vocabSize(90_000).build());
    }
    for (MambaConfig c : configs) {
      MambaWeights w = Initialization.initialize(c, 3);
      MambaWeights z = MambaWeights.zerosLike(w);
      assertEquals(c, z.config);
      List<NamedTensor> wp = w.parameters(), zp = z.parameters();
      assertEquals(wp.size(), zp.size());
      Set<float[]> arrays = Collections.newSetFromMap(new IdentityHashMap<>());
      long floats = 0;
      for (int i = 0; i < wp.size(); i++) {
        NamedTensor a = wp.get(i), b = zp.get(i);
        assertEquals(a.name, b.name);
        assertArrayEquals(a.shape, b.shape, a.name);
        assertArrayEquals(new float[a.data.length], b.data, c + " " + a.name);
        assertNotSame(a.data, b.data);
        assertTrue(arrays.add(b.data), a.name + ": an array of another parameter");
        floats += b.data.length;
      }
      if (c.tieWordEmbeddings) {
        assertSame(z.embeddings, z.lmHead);
      }
      for (int i = 0; i < z.blocks.length; i++) {
        assertSame(z.parameter("backbone.layers." + i + ".norm.weight").data, z.blocks[i].norm);
      }
      System.out.printf("%s: %d floats of zeros like the model%n", c, floats);
    }
  }
}
