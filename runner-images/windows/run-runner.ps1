<#
.SYNOPSIS
  Start one ephemeral GitHub Actions runner on a Windows raw_exec host.

.DESCRIPTION
  Fetches the runner release archive for this CPU into a cache (once per
  version), refuses it unless its SHA-256 matches a pinned value, expands it
  into a fresh work dir, runs it with the just-in-time (JIT) config read from
  a file, and removes the work dir when it exits (try/finally). The JIT
  config is a secret: this script never prints it.

  Windows PowerShell 5.1 and PowerShell 7 both run it:
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File run-runner.ps1

  Environment (each also a parameter):
    JIT_CONFIG_FILE   default: $env:NOMAD_SECRETS_DIR\jit
    RUNNER_VERSION    default below; must be pinned in $Pinned
    RUNNER_CACHE_DIR  default: $env:ProgramData\buildfleet-runner
    RUNNER_BASE_URL   default: GitHub releases
    NOMAD_TASK_DIR    the work dir is created under it (else %TEMP%)
#>
[CmdletBinding()]
param(
    [string]$RunnerVersion = $(if ($env:RUNNER_VERSION) { $env:RUNNER_VERSION } else { '2.329.0' }),
    [string]$JitConfigFile = $(if ($env:JIT_CONFIG_FILE) { $env:JIT_CONFIG_FILE } else { Join-Path "$env:NOMAD_SECRETS_DIR" 'jit' }),
    [string]$CacheDir = $(if ($env:RUNNER_CACHE_DIR) { $env:RUNNER_CACHE_DIR } else { Join-Path "$env:ProgramData" 'buildfleet-runner' }),
    [string]$BaseUrl = $(if ($env:RUNNER_BASE_URL) { $env:RUNNER_BASE_URL } else { 'https://github.com/actions/runner/releases/download' })
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Pinned SHA-256 of each release archive, from the runner's release notes.
# Keep in step with runner-images/checksums.txt. win-arm64 is not pinned yet.
$Pinned = @{
    'actions-runner-win-x64-2.329.0.zip' = 'f60be5ddf373c52fd735388c3478536afd12bfd36d1d0777c6b855b758e70f25'
}

function Fail([string]$Message) {
    [Console]::Error.WriteLine("run-runner: $Message")
    exit 1
}

function Log([string]$Message) {
    [Console]::Error.WriteLine("run-runner: $Message")
}

switch ($env:PROCESSOR_ARCHITECTURE) {
    'AMD64' { $arch = 'x64' }
    'ARM64' { $arch = 'arm64' }
    default { Fail "unsupported CPU $($env:PROCESSOR_ARCHITECTURE)" }
}

$file = "actions-runner-win-$arch-$RunnerVersion.zip"
$want = $Pinned[$file]
if (-not $want -or $want -notmatch '^[0-9a-fA-F]{64}$') {
    Fail "checksum not pinned for $file (runner $RunnerVersion); refusing to run an unverified runner"
}

if (-not (Test-Path -LiteralPath $JitConfigFile -PathType Leaf) -or (Get-Item -LiteralPath $JitConfigFile).Length -eq 0) {
    Fail "no JIT config at $JitConfigFile (set JIT_CONFIG_FILE)"
}

function Test-Verified([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return $false }
    return (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash -eq $want.ToUpperInvariant()
}

New-Item -ItemType Directory -Force -Path $CacheDir | Out-Null
$archive = Join-Path $CacheDir $file
if (-not (Test-Verified $archive)) {
    Remove-Item -LiteralPath $archive -Force -ErrorAction SilentlyContinue
    $part = "$archive.part.$PID"
    Log "downloading $file"
    # Windows PowerShell 5.1 may default to TLS 1.0.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    try {
        Invoke-WebRequest -UseBasicParsing -Uri "$BaseUrl/v$RunnerVersion/$file" -OutFile $part
    } catch {
        Remove-Item -LiteralPath $part -Force -ErrorAction SilentlyContinue
        Fail "download of $file failed: $($_.Exception.Message)"
    }
    if (-not (Test-Verified $part)) {
        Remove-Item -LiteralPath $part -Force -ErrorAction SilentlyContinue
        Fail "checksum mismatch for $file; refusing to run it"
    }
    Move-Item -LiteralPath $part -Destination $archive -Force
}

$base = if ($env:NOMAD_TASK_DIR) { $env:NOMAD_TASK_DIR } else { [IO.Path]::GetTempPath() }
$work = Join-Path $base ('actions-runner.' + [guid]::NewGuid().ToString('N'))
$code = 1
try {
    New-Item -ItemType Directory -Path $work | Out-Null
    Expand-Archive -LiteralPath $archive -DestinationPath $work
    $run = Join-Path $work 'run.cmd'
    if (-not (Test-Path -LiteralPath $run -PathType Leaf)) { Fail "$file has no run.cmd" }
    Log "starting runner $RunnerVersion in $work"
    # The config goes from the file to the runner's argument list only.
    # Nomad stops a Windows task by ending its job object, which ends the
    # runner with it; a stopped PowerShell still runs the finally block.
    Push-Location -LiteralPath $work
    try {
        & $run --jitconfig ((Get-Content -LiteralPath $JitConfigFile -Raw).Trim())
        $code = $LASTEXITCODE
    } finally {
        Pop-Location
    }
    Log "runner exited with status $code"
} finally {
    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
}
exit $code
