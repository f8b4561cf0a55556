using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Distillation;

/// <summary>Distillation loss terms (all differentiable in the student's tensors).</summary>
public static class DistillationLosses
{
    /// <summary>
    /// Channel-wise distillation (Shu et al. 2021): per channel, a softmax over spatial positions of feature/τ for
    /// teacher and student; loss = τ² · mean over samples and channels of KL(teacher ‖ student).
    /// </summary>
    public static Tensor ChannelWise(Tensor student, Tensor teacher, double tau = 4.0)
    {
        using var scope = NewDisposeScope();
        if (!student.shape.SequenceEqual(teacher.shape))
            throw new ArgumentException($"CWD needs equal shapes (use an adapter): student [{string.Join(",", student.shape)}], teacher [{string.Join(",", teacher.shape)}]");
        var s = student.flatten(2).div(tau).log_softmax(-1);
        var t = teacher.flatten(2).div(tau).log_softmax(-1);
        // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s), per (sample, channel), averaged.
        var kl = t.exp().mul(t.sub(s)).sum(-1);
        return kl.mean().mul(tau * tau).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Illumination consistency: the low-frequency colour and brightness (the image averaged over 8×8 blocks) of the
    /// output matches the reference's inside the face region.
    /// </summary>
    public static Tensor Illumination(Tensor output, Tensor reference, Tensor faceMask, int block = 8)
    {
        using var scope = NewDisposeScope();
        int k = (int)Math.Max(1, Math.Min(block, output.shape[3] / 4));
        var a = nn.functional.avg_pool2d(output, k, k);
        var b = nn.functional.avg_pool2d(reference, k, k);
        var m = nn.functional.avg_pool2d(faceMask, k, k);
        return a.sub(b).abs().mul(m).sum().div(m.sum().mul(output.shape[1]).clamp_min(1)).MoveToOuterDisposeScope();
    }
}
