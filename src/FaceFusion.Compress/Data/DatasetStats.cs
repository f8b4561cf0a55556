using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Data;

/// <summary>Counts per identity and split, and a contact sheet of aligned crops for a visual check.</summary>
public static class DatasetStats
{
    /// <summary>(identity, train, val, test) rows, identities in name order.</summary>
    public static List<(string Identity, int Train, int Val, int Test)> Counts(IEnumerable<FaceRecord> records) =>
        records.GroupBy(r => r.Identity).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count(r => r.Split == Splits.Train), g.Count(r => r.Split == Splits.Val), g.Count(r => r.Split == Splits.Test)))
            .ToList();

    /// <summary>
    /// A grid of <paramref name="count"/> random crops (seeded), each <paramref name="tile"/> px, with the arcface_128
    /// template's eye line drawn across every tile and the template's five points marked: a correctly aligned face
    /// has its eyes on the line.
    /// </summary>
    public static RgbImage ContactSheet(string datasetDir, IReadOnlyList<FaceRecord> records, int count = 48, int tile = 128, int seed = 0)
    {
        var rng = new Random(seed);
        var chosen = records.OrderBy(_ => rng.Next()).Take(count).ToList();
        int columns = Math.Min(8, Math.Max(1, chosen.Count));
        int rows = Math.Max(1, (chosen.Count + columns - 1) / columns);
        var sheet = new RgbImage(columns * tile, rows * tile);
        var eyesY = (FaceTemplates.Arcface128[0].Y + FaceTemplates.Arcface128[1].Y) / 2 * tile;
        for (int i = 0; i < chosen.Count; i++)
        {
            var crop = RgbImage.Load(Path.Combine(datasetDir, chosen[i].CropFile));
            if (crop.Width != tile) crop = crop.Resize(tile, tile);
            int ox = i % columns * tile, oy = i / columns * tile;
            for (int y = 0; y < tile; y++)
                Array.Copy(crop.Pixels, y * tile * 3, sheet.Pixels, ((oy + y) * sheet.Width + ox) * 3, tile * 3);
            int ly = oy + (int)Math.Round(eyesY);
            for (int x = 0; x < tile; x += 2) SetPixel(sheet, ox + x, ly, 0, 255, 0);
            foreach (var (px, py) in FaceTemplates.InPixels(FaceTemplates.Arcface128, tile))
                for (int d = -2; d <= 2; d++)
                {
                    SetPixel(sheet, ox + (int)px + d, oy + (int)py, 255, 0, 0);
                    SetPixel(sheet, ox + (int)px, oy + (int)py + d, 255, 0, 0);
                }
        }
        return sheet;
    }

    private static void SetPixel(RgbImage image, int x, int y, byte r, byte g, byte b)
    {
        if ((uint)x >= (uint)image.Width || (uint)y >= (uint)image.Height) return;
        image[x, y, 0] = r; image[x, y, 1] = g; image[x, y, 2] = b;
    }
}
