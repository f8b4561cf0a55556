using FaceFusion.Compress.Models.Graph;

namespace FaceFusion.Compress.Models.Networks;

/// <summary>
/// The multi-scale PatchGAN discriminator of the local adversarial loss: the same design at full and half
/// resolution, each a stack of 4×4 stride-2 convs with leaky ReLU ending in a 1-channel map of patch logits
/// (outputs `logits0`, `logits1`). Its leaky-ReLU nodes are the feature-matching taps (<see cref="FeatureTaps"/>).
/// </summary>
public static class Discriminator
{
    public static NetworkGraph Build(int resolution, int width = 32, int scales = 2, int layers = 3)
    {
        var g = new GraphBuilder("discriminator", resolution);
        var image = g.ImageInput("image", 3);
        g.Meta("input", "RGB in [-1,1], swapper output or real crop");
        var x = image;
        for (int s = 0; s < scales; s++)
        {
            if (s > 0) x = g.Pool($"down{s}", x, Ops.AvgPool, 2, 2);
            var y = x;
            int channels = width;
            for (int l = 0; l < layers; l++)
            {
                y = g.Conv($"d{s}_conv{l}", y, channels, kernel: 4, stride: 2, bias: true, padding: 1);
                y = g.Act($"d{s}_act{l}", y, Activations.LeakyRelu, 0.2f);
                channels = Math.Min(channels * 2, 256);
            }
            g.Output($"logits{s}", g.Conv($"d{s}_logits", y, 1, kernel: 3, bias: true));
        }
        return g.Build();
    }

    public static IReadOnlyList<string> FeatureTaps(NetworkGraph graph) =>
        graph.Nodes.Where(n => n.Op == Ops.Act).Select(n => n.Name).ToList();
}
