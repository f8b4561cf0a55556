using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Training;
using YamlDotNet.RepresentationModel;

namespace FaceFusion.Compress.Tests.Judging;

/// <summary>
/// The judge must never be trained against (issue 21): no shipped recipe or training config names it, and a config
/// that does is refused by validation, as is an identity network built on it.
/// </summary>
public class NoTrainingAgainstJudgeTests
{
    private static string RepoRoot => AssetPaths.FindRepositoryRoot() ?? throw new InvalidOperationException("tests must run inside the clone");

    /// <summary>Every shipped YAML that configures training: recipes, the configs they name, the kept models' configs.</summary>
    private static List<string> ShippedYaml()
    {
        var files = Directory.GetFiles(Path.Combine(RepoRoot, "recipes"), "*.yaml", SearchOption.AllDirectories).ToList();
        var pretrained = Path.Combine(RepoRoot, "datasets", "pretrained");
        if (Directory.Exists(pretrained))
            files.AddRange(Directory.GetFiles(pretrained, "config.yaml", SearchOption.AllDirectories));
        return files;
    }

    private static IEnumerable<(string Key, string Value)> Scalars(YamlNode node, string key = "")
    {
        switch (node)
        {
            case YamlScalarNode s when s.Value is not null: yield return (key, s.Value); break;
            case YamlMappingNode m:
                foreach (var (k, v) in m.Children)
                    foreach (var x in Scalars(v, ((YamlScalarNode)k).Value ?? "")) yield return x;
                break;
            case YamlSequenceNode q:
                foreach (var v in q.Children) foreach (var x in Scalars(v, key)) yield return x;
                break;
        }
    }

    [Fact]
    public void NoShippedRecipeOrConfig_NamesTheJudge()
    {
        var files = ShippedYaml();
        Assert.True(files.Count >= 5, $"expected the shipped recipes and configs, found {files.Count}");
        int trainConfigs = 0;
        foreach (var file in files)
        {
            var yaml = new YamlStream();
            using (var reader = new StreamReader(file)) yaml.Load(reader);
            var scalars = yaml.Documents.SelectMany(d => Scalars(d.RootNode)).ToList();
            // No value anywhere names the judge's files or folder, whatever key it sits under.
            var hit = scalars.FirstOrDefault(s => s.Value.Contains(JudgeFiles.FileStem, StringComparison.OrdinalIgnoreCase)
                                                 || s.Value.Contains("faceapi", StringComparison.OrdinalIgnoreCase)
                                                 || JudgeFiles.IsJudgeFile(Path.Combine(RepoRoot, s.Value)));
            Assert.True(hit == default, $"{file}: {hit.Key} = {hit.Value} names the identity judge");
            // Any key that names an embedder or recogniser points at something that is not the judge.
            foreach (var (key, value) in scalars.Where(s => s.Key.Contains("embedder") || s.Key.Contains("recogni")))
                Assert.False(JudgeFiles.IsJudgeFile(value), $"{file}: {key} = {value}");
            // Training configs under recipes/ (no `stages:`) pass validation, which refuses the judge (tested below).
            // The kept models' config.yaml is the record of a run (it lists computed keys such as total_steps), not an input.
            bool isRecipe = scalars.Any(s => s.Key == "stage");
            if (!isRecipe && file.StartsWith(Path.Combine(RepoRoot, "recipes"), StringComparison.Ordinal))
            {
                var config = TrainConfig.Load(file);
                Assert.False(config.IdentityEmbedder is { } e && JudgeFiles.IsJudgeFile(e), file);
                trainConfigs++;
            }
        }
        Assert.True(trainConfigs >= 3, $"expected the shipped training configs to be checked, checked {trainConfigs}");
    }

    [Theory]
    [InlineData("identity_embedder")]
    [InlineData("vgg_weights")]
    public void AConfigNamingTheJudge_IsRefused_WithTheKeyAndFile(string key)
    {
        var dir = TestAssets.TempDir();
        foreach (var judgeFile in new[] { TestAssets.Assets.JudgeWeights, TestAssets.Assets.JudgeManifest })
        {
            var path = Path.Combine(dir, "judged.yaml");
            File.WriteAllText(path, $"phases:\n  - resolution: 32\n    steps: 1\n{key}: {judgeFile}\n");
            var error = Assert.Throws<InvalidDataException>(() => TrainConfig.Load(path));
            Assert.Contains(path, error.Message);
            Assert.Contains(key, error.Message);
            Assert.Contains("identity judge", error.Message);
        }
        // A renamed copy is recognised by its content, relative to the config's folder.
        File.Copy(TestAssets.Assets.JudgeWeights, Path.Combine(dir, "embedder.onnx"));
        var renamed = Path.Combine(dir, "renamed.yaml");
        File.WriteAllText(renamed, $"phases:\n  - resolution: 32\n    steps: 1\n{key}: embedder.onnx\n");
        Assert.Throws<InvalidDataException>(() => TrainConfig.Load(renamed));
        // The same config naming the bundled embedder is accepted: the refusal is about the judge only.
        var fine = Path.Combine(dir, "fine.yaml");
        File.WriteAllText(fine, $"phases:\n  - resolution: 32\n    steps: 1\nidentity_embedder: {TestAssets.Assets.IdentityEmbedder}\n");
        Assert.Equal(TestAssets.Assets.IdentityEmbedder, TrainConfig.Load(fine).IdentityEmbedder);
    }

    [Fact]
    public void AnIdentityNetworkOnTheJudge_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new IdentityNetwork(TestAssets.Assets.JudgeWeights));
        Assert.Contains("identity judge", error.Message);
    }
}
