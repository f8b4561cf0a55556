using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Training;

/// <summary>
/// The supervision picture of a cross pair: the pseudo target's face (a face of the source's person in a pose close to
/// the target's) pasted into the target's surroundings through the target's face mask.
/// A hard paste leaves a seam where the two people's foreheads, cheeks and skin tones meet, and a network trained on
/// it learns to draw that seam. Two options remove it: the pseudo face's colours matched to the target's inside the
/// mask, and a mask edge that ramps to zero inside the mask instead of stepping.
/// </summary>
public static class PseudoTargetComposite
{
    /// <summary>
    /// Returns a new [B,3,R,R] tensor (the caller disposes it, or its dispose scope does).
    /// </summary>
    /// <param name="pseudo">[B,3,R,R] pseudo targets in [−1,1]; not modified.</param>
    /// <param name="target">[B,3,R,R] targets in [−1,1]; not modified.</param>
    /// <param name="mask">[B,1,R,R] face mask in {0,1}; not modified.</param>
    /// <param name="feather">Width of the ramp from the mask's edge inwards, as a fraction of R (0: hard edge).</param>
    /// <param name="matchColor">Match the pseudo face's per-channel mean and standard deviation to the target's, both
    /// measured inside the mask.</param>
    public static Tensor Compose(Tensor pseudo, Tensor target, Tensor mask, double feather, bool matchColor)
    {
        if (feather is < 0 or > 0.5) throw new ArgumentOutOfRangeException(nameof(feather), feather, "pseudo-target feather must be in [0, 0.5] of the resolution");
        using var scope = NewDisposeScope();
        var face = matchColor ? MatchColor(pseudo, target, mask) : pseudo;
        var alpha = feather > 0 ? InnerRamp(mask, feather) : mask;
        return face.mul(alpha).add(target.mul(alpha.neg().add(1))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A mask that is 0 outside and on the edge of <paramref name="mask"/> and rises linearly to 1 over
    /// feather·R pixels inside it: a box blur of width 2·feather·R puts 0.5 on the edge, and 2·blur − 1 moves the
    /// whole ramp inside, so no pixel of the pseudo face's surroundings is pasted.
    /// </summary>
    public static Tensor InnerRamp(Tensor mask, double feather)
    {
        using var scope = NewDisposeScope();
        long size = mask.shape[^1];
        int half = (int)Math.Max(1, Math.Round(feather * size));
        var blurred = nn.functional.avg_pool2d(mask, 2 * half + 1, 1, half, count_include_pad: false);
        return blurred.mul(2).sub(1).clamp(0, 1).mul(mask).MoveToOuterDisposeScope();
    }

    private static Tensor MatchColor(Tensor pseudo, Tensor target, Tensor mask)
    {
        var count = mask.sum([2, 3], keepdim: true).clamp_min(1);
        Tensor Mean(Tensor x) => x.mul(mask).sum([2, 3], keepdim: true).div(count);
        var meanP = Mean(pseudo);
        var meanT = Mean(target);
        var stdP = Mean(pseudo.sub(meanP).pow(2)).sqrt().add(1e-4);
        var stdT = Mean(target.sub(meanT).pow(2)).sqrt().add(1e-4);
        // Faces whose mask is empty keep their colours: the scale is 1 and the shift 0 there.
        var has = mask.sum([2, 3], keepdim: true).gt(0);
        var scale = where(has, stdT.div(stdP), ones_like(stdT));
        var shift = where(has, meanT.sub(meanP.mul(scale)), zeros_like(meanT));
        return pseudo.mul(scale).add(shift).clamp(-1, 1);
    }
}
