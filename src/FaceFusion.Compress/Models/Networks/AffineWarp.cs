using FaceFusion.Compress.Imaging;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Networks;

/// <summary>Differentiable fixed affine warps of image batches (affine grid + bilinear sampling).</summary>
public static class AffineWarp
{
    /// <summary>
    /// The 2×3 theta for <c>affine_grid</c> (align_corners = false) that samples an input of inW×inH at
    /// <paramref name="outputToInput"/>(output pixel), pixel coordinates at pixel centres.
    /// </summary>
    public static Affine2D Theta(Affine2D outputToInput, int inW, int inH, int outW, int outH)
    {
        var fromNormalisedOut = new Affine2D(outW / 2.0, 0, outW / 2.0 - 0.5, 0, outH / 2.0, outH / 2.0 - 0.5);
        var toNormalisedIn = new Affine2D(2.0 / inW, 0, 1.0 / inW - 1, 0, 2.0 / inH, 1.0 / inH - 1);
        return toNormalisedIn.After(outputToInput.After(fromNormalisedOut));
    }

    /// <summary>Warps [N,C,H,W] to [N,C,outH,outW] with bilinear sampling, zeros outside. The result is the caller's.</summary>
    public static Tensor Apply(Tensor images, Affine2D outputToInput, int outW, int outH)
    {
        using var scope = NewDisposeScope();
        var t = Theta(outputToInput, (int)images.shape[3], (int)images.shape[2], outW, outH);
        var theta = tensor(new[] { (float)t.A, (float)t.B, (float)t.C, (float)t.D, (float)t.E, (float)t.F }, [1, 2, 3], dtype: images.dtype, device: images.device)
            .expand(images.shape[0], 2, 3);
        var grid = nn.functional.affine_grid(theta, [images.shape[0], images.shape[1], outH, outW], align_corners: false);
        return nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false)
            .MoveToOuterDisposeScope();
    }
}
