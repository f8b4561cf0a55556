using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Training;

/// <summary>
/// Random views of generated faces for the identity loss: a small similarity jitter per image (shift, scale, rotation)
/// and, per batch, a down-and-up sampling or a blur. A pixel pattern that fools the recogniser on the exact output
/// (the stripes of an adversarial solution) does not survive these, while a real change of face does, so the loss
/// rewards the latter. Differentiable; draws only from the given random stream (resumes stay deterministic).
/// </summary>
public static class IdentityAugmentation
{
    /// <summary>Largest shift as a fraction of the side, scale change, and rotation in radians.</summary>
    public const double MaxShift = 0.04, MaxScale = 0.06, MaxRotation = 0.09;

    /// <summary>[N,C,H,W] → augmented [N,C,H,W]; the result belongs to the caller.</summary>
    public static Tensor Apply(Tensor images, Random rng)
    {
        using var scope = NewDisposeScope();
        long n = images.shape[0], h = images.shape[2], w = images.shape[3];
        var theta = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            double s = 1 + (rng.NextDouble() * 2 - 1) * MaxScale, r = (rng.NextDouble() * 2 - 1) * MaxRotation;
            double tx = (rng.NextDouble() * 2 - 1) * MaxShift * 2, ty = (rng.NextDouble() * 2 - 1) * MaxShift * 2;
            theta[i * 6 + 0] = (float)(s * Math.Cos(r)); theta[i * 6 + 1] = (float)(-s * Math.Sin(r)); theta[i * 6 + 2] = (float)tx;
            theta[i * 6 + 3] = (float)(s * Math.Sin(r)); theta[i * 6 + 4] = (float)(s * Math.Cos(r)); theta[i * 6 + 5] = (float)ty;
        }
        var grid = nn.functional.affine_grid(tensor(theta, [n, 2, 3], dtype: images.dtype), [n, images.shape[1], h, w], align_corners: false);
        // Border padding: zeros would add a dark frame the recogniser might key on.
        var x = nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
        switch (rng.Next(3))
        {
            case 0: // half resolution and back
                x = nn.functional.interpolate(nn.functional.avg_pool2d(x, 2, 2), size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
                break;
            case 1: // 3×3 binomial blur, per channel
                var k = tensor(new float[] { 1, 2, 1, 2, 4, 2, 1, 2, 1 }, [1, 1, 3, 3], dtype: images.dtype).div(16).expand(images.shape[1], 1, 3, 3);
                x = nn.functional.conv2d(nn.functional.pad(x, [1, 1, 1, 1], PaddingModes.Replicate), k, groups: images.shape[1]);
                break;
        }
        return x.MoveToOuterDisposeScope();
    }
}
