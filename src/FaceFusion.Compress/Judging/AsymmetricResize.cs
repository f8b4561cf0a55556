using static TorchSharp.torch;

namespace FaceFusion.Compress.Judging;

/// <summary>
/// TensorFlow's <c>resizeBilinear</c> without align-corners and without half-pixel centres (ONNX <c>Resize</c>
/// linear/asymmetric): output index i samples source coordinate <c>start + i·extent/out</c>, between its floor and
/// <c>min(ceil, size − 1)</c>, linearly, no antialiasing. PyTorch's <c>interpolate</c> uses half-pixel centres and
/// moves the judge's descriptors by up to 1.3e-2, hence this. Done as two matrix products,
/// <c>Rows · image · Columnsᵀ</c>, with precomputed interpolation matrices.
/// </summary>
public static class AsymmetricResize
{
    /// <summary>
    /// The [outSize, inSize] interpolation matrix for one axis: resamples the span [start, start + extent) of an axis of
    /// inSize pixels to outSize samples. With start 0 and extent inSize it is the plain resize; a box inside the axis
    /// gives cut-then-resize in one step (identical when the box is whole pixels, since its samples never reach its end).
    /// </summary>
    public static float[,] Matrix(int inSize, int outSize, double start = 0, double? extent = null)
    {
        if (inSize <= 0 || outSize <= 0) throw new ArgumentException($"sizes must be positive, got {inSize} → {outSize}");
        double span = extent ?? inSize;
        var m = new float[outSize, inSize];
        for (int i = 0; i < outSize; i++)
        {
            double source = start + i * span / outSize;
            int lo = (int)Math.Floor(source);
            int hi = Math.Min((int)Math.Ceiling(source), inSize - 1);
            lo = Math.Clamp(lo, 0, inSize - 1);
            double frac = source - Math.Floor(source);
            m[i, lo] += (float)(1 - frac);
            m[i, hi] += (float)frac;
        }
        return m;
    }

    /// <summary>Resizes [N,C,H,W] to [N,C,outHeight,outWidth]. The result is a new tensor; the caller disposes it.</summary>
    public static Tensor Resize(Tensor images, int outHeight, int outWidth)
    {
        int h = (int)images.shape[2], w = (int)images.shape[3];
        return Resample(images, Matrix(h, outHeight), Matrix(w, outWidth));
    }

    /// <summary>Applies row and column interpolation matrices: <c>rows · image · columnsᵀ</c> per channel.</summary>
    public static Tensor Resample(Tensor images, float[,] rows, float[,] columns)
    {
        using var scope = NewDisposeScope();
        var r = tensor(rows).to(images.dtype);
        var c = tensor(columns).to(images.dtype);
        return r.matmul(images).matmul(c.t()).MoveToOuterDisposeScope();
    }
}
