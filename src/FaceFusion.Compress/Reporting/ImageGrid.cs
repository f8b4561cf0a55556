using FaceFusion.Compress.Imaging;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Reporting;

/// <summary>Turns image tensors into PNG grids.</summary>
public static class ImageGrid
{
    /// <summary>[3,H,W] in [−1,1] → RGB image.</summary>
    public static RgbImage ToImage(Tensor chw)
    {
        using var scope = NewDisposeScope();
        var hwc = chw.detach().cpu().clamp(-1, 1).add(1).mul(127.5).round().permute(1, 2, 0).contiguous().to_type(ScalarType.Byte);
        int h = (int)hwc.shape[0], w = (int)hwc.shape[1];
        return new RgbImage(w, h, hwc.data<byte>().ToArray());
    }

    /// <summary>Rows of images: columns[c] is a batch [B,3,H,W]; row b shows columns[0][b] | columns[1][b] | … .</summary>
    public static RgbImage Rows(IReadOnlyList<Tensor> columns, int maxRows = 8)
    {
        int rows = (int)Math.Min(maxRows, columns[0].shape[0]);
        int h = (int)columns[0].shape[2], w = (int)columns[0].shape[3];
        var grid = new RgbImage(w * columns.Count, h * rows);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns.Count; c++)
            {
                var image = ToImage(columns[c][r]);
                if (image.Width != w || image.Height != h) image = image.Resize(w, h);
                for (int y = 0; y < h; y++)
                    Array.Copy(image.Pixels, y * w * 3, grid.Pixels, ((r * h + y) * grid.Width + c * w) * 3, w * 3);
            }
        return grid;
    }
}
