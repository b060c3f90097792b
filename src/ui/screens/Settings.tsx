import { Box, Text } from 'ink';
import type { EditableSetting } from '../../config/settings.ts';
import type { ConsoleSettings, SettingsInfo } from '../services.ts';
import { theme } from '../theme.ts';

/** The settings the screen can change, in the order shown. */
export const EDITABLE_SETTINGS: { field: EditableSetting; label: string; hint: string }[] = [
  { field: 'operator', label: 'operator', hint: 'your name in the audit trail and run history' },
  { field: 'backupRoot', label: 'backup root', hint: 'where cleanups write their backups' },
  { field: 'batchSize', label: 'batch size', hint: 'documents per delete batch, 1 to 1,000' },
];

export function settingValue(settings: ConsoleSettings, field: EditableSetting): string {
  const value = settings[field];
  return value === undefined ? '' : String(value);
}

export function SettingsScreen({
  settings,
  info,
  row,
}: {
  settings: ConsoleSettings;
  info: SettingsInfo;
  row: number;
}) {
  const width = Math.max(...EDITABLE_SETTINGS.map((s) => s.label.length));
  return (
    <Box flexDirection="column">
      <Text bold>Settings</Text>
      <Text color={theme.color('dim')} wrap="truncate-end">
        {info.file ? `saved in ${info.file}` : 'this session does not save settings'}
      </Text>
      <Box flexDirection="column" marginTop={1}>
        {EDITABLE_SETTINGS.map(({ field, label, hint }, i) => (
          <Text key={field} inverse={i === row} wrap="truncate-end">
            {label.padEnd(width)} {settingValue(settings, field) || '(not set: your login name)'}
            <Text color={theme.color('dim')}>
              {' '}
              {info.fromFlags.includes(field) ? '(set by a flag for this session) ' : ''}
              {hint}
            </Text>
          </Text>
        ))}
      </Box>
      <Box flexDirection="column" marginTop={1}>
        <Text bold>
          Connection profiles{info.activeProfile ? ` (this session: ${info.activeProfile})` : ''}
        </Text>
        {info.profiles.length === 0 && <Text color={theme.color('dim')}>none yet</Text>}
        {info.profiles.map((profile) => (
          <Text key={profile.name} wrap="truncate-end">
            {profile.name}
            {profile.readOnly ? ' [read-only]' : ''}: {profile.sources.join('  ')}
          </Text>
        ))}
        <Text color={theme.color('dim')} wrap="truncate-end">
          add or change: orphan-cleanup settings --profile NAME --profile-source SOURCE=env:VAR
        </Text>
        <Text color={theme.color('dim')} wrap="truncate-end">
          open the console with one: orphan-cleanup --profile NAME
        </Text>
      </Box>
    </Box>
  );
}
