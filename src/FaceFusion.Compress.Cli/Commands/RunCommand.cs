using System.ComponentModel;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Recipes;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class RunCommand : Command<RunCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<RECIPE>")]
        [Description("A recipe YAML (see recipes/README.md).")]
        public string Recipe { get; init; } = "";

        [CommandOption("--profile <NAME>")]
        [Description("Apply a profile's overrides (e.g. quality, lightweight).")]
        public string? Profile { get; init; }

        [CommandOption("--teacher <PATH>")]
        [Description("Use this teacher (checkpoint or ONNX) instead of the recipe's.")]
        public string? Teacher { get; init; }

        [CommandOption("--artifacts <DIR>")]
        [Description("Where runs go (default artifacts/ in the repository): the run folder is DIR/<name>[[-<profile>]].")]
        public string? Artifacts { get; init; }

        [CommandOption("--rerun <STAGE>")]
        [Description("Run this finished stage (folder name such as 02-prune, or a kind: its first stage) again from scratch, and every stage after it.")]
        public string? Rerun { get; init; }

        [CommandOption("--reuse-from <RUN>")]
        [Description("Another run folder of the same teacher, data, seed and resolution (e.g. another profile's): its leading stages finished with the same parameters are copied in, verified by hash, and skipped here.")]
        public string? ReuseFrom { get; init; }

        [CommandOption("--no-wait")]
        [Description("If another process is running the same run folder, stop (exit 1) instead of waiting for it.")]
        public bool NoWait { get; init; }

        [CommandOption("--dry-run")]
        [Description("Validate and print the plan with estimated params/MACs; do no work.")]
        public bool DryRun { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        Recipe recipe;
        try { recipe = RecipeParser.Load(settings.Recipe, settings.Profile, settings.Teacher, Workspace.Root); }
        catch (RecipeException e)
        {
            foreach (var error in e.Errors) Console.Error.WriteLine($"error: {error}");
            return 2;
        }
        var runner = new RecipeRunner(recipe, AssetPaths.Locate(), Workspace.Root, settings.Artifacts is null ? null : Path.GetFullPath(settings.Artifacts))
        {
            NoWait = settings.NoWait,
        };
        if (settings.DryRun)
        {
            AnsiConsole.MarkupLineInterpolated($"plan for {recipe.Name}{(recipe.Profile is null ? "" : $" ({recipe.Profile})")} → {runner.RunDir}");
            foreach (var line in runner.Plan()) AnsiConsole.WriteLine("  " + line);
            return 0;
        }
        if (settings.Rerun is not null)
        {
            try { runner.StageIndex(settings.Rerun); }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        }
        List<StageRecord> records;
        try { records = runner.Run(line => AnsiConsole.WriteLine(line), settings.Rerun, settings.ReuseFrom); }
        catch (ReuseSourceException e)
        {
            Console.Error.WriteLine($"error: --reuse-from {e.Message}");
            return 2;
        }
        var table = new Table().Title($"run {runner.RunDir}").AddColumns("stage", "status", "seconds");
        foreach (var r in records) table.AddRow(r.Name, r.Status, r.Seconds.ToString("0"));
        AnsiConsole.Write(table);
        var report = records.SelectMany(r => r.Outputs).FirstOrDefault(o => o.Key == "report:md").Value;
        if (report is not null) AnsiConsole.MarkupLineInterpolated($"report: {report}");
        return 0;
    }
}
