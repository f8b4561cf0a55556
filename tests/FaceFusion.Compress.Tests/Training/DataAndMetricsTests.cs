using FaceFusion.Compress.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Training;

public class DataAndMetricsTests
{
    [Fact]
    public void StreamedData_GivesTheSameBatches_AsDataHeldInMemory()
    {
        // A zero budget streams every face (decoded per batch through a small cache); the batches must not change.
        using var inMemory = new FaceSwapData(TinyDataset.Path, "train", 32);
        using var streamed = new FaceSwapData(TinyDataset.Path, "train", 32, memoryBudget: 0);
        Assert.False(inMemory.Streaming);
        Assert.True(streamed.Streaming);
        for (long step = 0; step < 3; step++)
        {
            using var a = inMemory.Sample(6, 0.3, 7, step);
            using var b = streamed.Sample(6, 0.3, 7, step);
            Assert.Equal(a.TargetIndices, b.TargetIndices);
            foreach (var (x, y) in new[] { (a.Target, b.Target), (a.SourceImage, b.SourceImage), (a.Source, b.Source), (a.FaceMask, b.FaceMask), (a.RegionMask, b.RegionMask) })
                Assert.True(x.eq(y).all().item<bool>());
        }
    }

    [Fact]
    public void Psnr_MatchesTheFormula()
    {
        using var scope = NewDisposeScope();
        var a = zeros(1, 3, 8, 8);
        var b = full(1, 3, 8, 8, 0.1f);   // MSE 0.01 on a range of 2 → 10·log10(4/0.01) = 26.02 dB
        Assert.Equal(26.0206, ImageMetrics.Psnr(a, b).item<float>(), 3);
        Assert.Equal(100f, ImageMetrics.Psnr(a, a).item<float>());
    }

    [Fact]
    public void Ssim_IsOneForEqualImagesAndFallsWithNoise()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var a = rand(2, 3, 32, 32, generator: gen).mul(2).sub(1);
        Assert.Equal(1f, ImageMetrics.Ssim(a, a).min().item<float>(), 4);
        var slight = ImageMetrics.Ssim(a, a.add(randn(2, 3, 32, 32, generator: gen).mul(0.05))).mean().item<float>();
        var heavy = ImageMetrics.Ssim(a, a.add(randn(2, 3, 32, 32, generator: gen).mul(0.5))).mean().item<float>();
        Assert.True(slight < 1 && heavy < slight, $"{slight} {heavy}");
    }

    [Fact]
    public void Sampler_IsDeterministicAndPairsAsConfigured()
    {
        using var data = new FaceSwapData(TinyDataset.Path, null, 32);
        Assert.Equal(2, data.IdentityCount);
        using var a = data.Sample(64, 0.25, 5, 17);
        using var b = data.Sample(64, 0.25, 5, 17);
        Assert.Equal(a.TargetIndices, b.TargetIndices);
        Assert.Equal(a.SourceIndices, b.SourceIndices);
        Assert.True(a.Target.eq(b.Target).all().item<bool>());
        var same = a.Same.data<float>().ToArray();
        for (int i = 0; i < same.Length; i++)
            Assert.Equal(same[i] == 1f, data.IdentityOf(a.TargetIndices[i]) == data.IdentityOf(a.SourceIndices[i]));
        Assert.InRange(same.Count(s => s == 1f), 4, 32);
        Assert.Equal([64L, 1, 32, 32], a.FaceMask.shape);
        // The face region covers the middle of an aligned crop and not its corners.
        Assert.Equal(1f, a.FaceMask[0, 0, 18, 16].item<float>());
        Assert.Equal(0f, a.FaceMask[0, 0, 0, 0].item<float>());
        Assert.InRange(a.Target.min().item<float>(), -1f, -0.5f);
        Assert.InRange(a.Target.max().item<float>(), 0.5f, 1f);
    }
}
