using System.ComponentModel;
using FaceFusion.Compress.Training;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>The mixed-precision policy options `ffc ptq` and `ffc qat` share.</summary>
internal abstract class QuantizationSettings : CommandSettings
{
    [CommandOption("--keep-float <NODES>")]
    [Description("Comma-separated conv nodes that stay float in addition to the default policy.")]
    public string? KeepFloat { get; init; }

    [CommandOption("--int8-skips")]
    [Description("Also quantize adds, concats, resizes and gates (the default keeps skips float).")]
    public bool Int8Skips { get; init; }

    [CommandOption("--island-weights <W>")]
    [Description("Storage of attention/injection weights, which compute in float: int8 (per channel, default), fp16 or fp32.")]
    public string? IslandWeights { get; init; }

    [CommandOption("--full-range-weights")]
    [Description("8-bit weights [[−127, 127]] (for VNNI/ARM targets); the default 7-bit range avoids u8×s8 saturation on x86 without VNNI.")]
    public bool FullRangeWeights { get; init; }

    [CommandOption("--sensitivity-keep <K>")]
    [Description("Sensitivity mode: quantize each conv alone and keep the K with the largest val PSNR drop float.")]
    public int? SensitivityKeep { get; init; }

    [CommandOption("--sensitivity-threshold <DB>")]
    [Description("Sensitivity mode: also keep float every conv whose val PSNR drop exceeds DB.")]
    public double? SensitivityThresholdDb { get; init; }

    [CommandOption("--dataset <DIR>")]
    [Description("Prepared dataset. Default datasets/bundled.")]
    public string? Dataset { get; init; }

    [CommandOption("--min-sqnr <DB>")]
    [Description("Refuse to write the INT8 model when any quantized value's SQNR is below DB, naming it. Default 20.")]
    public double? MinSqnrDb { get; init; }

    /// <summary>Checks the shared options; null when they are valid.</summary>
    protected string? ValidateQuantization() =>
        MinSqnrDb is { } floor && !double.IsFinite(floor) ? $"--min-sqnr {floor}: give a finite number of dB" : null;

    /// <summary>Applies the options given on the command line to <paramref name="q"/>.</summary>
    public void ApplyTo(QatConfig q)
    {
        if (KeepFloat is not null) q.KeepFloat.AddRange(KeepFloat.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (Int8Skips) q.Int8Skips = true;
        if (IslandWeights is not null) q.IslandWeights = IslandWeights;
        if (FullRangeWeights) q.FullRangeWeights = true;
        if (SensitivityKeep is { } keep) q.SensitivityKeep = keep;
        if (SensitivityThresholdDb is { } threshold) q.SensitivityThresholdDb = threshold;
        if (MinSqnrDb is { } floor) q.MinSqnrDb = floor;
    }
}
